package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoFixedDateBesideTheRealClock keeps out the class of test that turned
// main red once: a calendar day written into a test (time.Date with a literal
// year) in the same function that reads the real clock (time.Now, Since,
// Until). Such a test passes until the real date walks past the written one.
// Derive the day from the clock the test injects instead. A function that
// really needs both says why on a line `// fixed-date: <why>`.
func TestNoFixedDateBesideTheRealClock(t *testing.T) {
	root := moduleRoot(t)
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		bad = append(bad, fixedDatesBesideNow(t, path)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(strings.TrimPrefix(b, root+string(filepath.Separator)))
	}
}

// fixedDatesBesideNow lists, for one file, each top-level function that holds
// both a literal-year time.Date and a real-clock read.
func fixedDatesBesideNow(t *testing.T, path string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	excused := map[int]bool{}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if strings.HasPrefix(c.Text, "// fixed-date:") {
				excused[fset.Position(c.Pos()).Line] = true
			}
		}
	}
	var out []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		var fixed []token.Pos
		realClock := false
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "time" {
				return true
			}
			switch sel.Sel.Name {
			case "Now", "Since", "Until":
				realClock = true
			case "Date":
				if len(call.Args) > 0 && literalYear(call.Args[0]) {
					fixed = append(fixed, call.Pos())
				}
			}
			return true
		})
		if !realClock {
			continue
		}
		for _, p := range fixed {
			pos := fset.Position(p)
			if excused[pos.Line] || excused[pos.Line-1] {
				continue
			}
			out = append(out, pos.String()+": "+fn.Name.Name+" writes a calendar day and reads the real clock; derive the day from the injected clock")
		}
	}
	return out
}

func literalYear(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.INT {
		return false
	}
	y, err := strconv.Atoi(lit.Value)
	return err == nil && y >= 1970
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}
