package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary play efm-bench's child roles (the bare
// server, the spinners), as the command does.
func TestMain(m *testing.M) {
	switch os.Getenv("EFM_BENCH_ROLE") {
	case roleBare:
		serveBare()
		return
	case roleSpin:
		spin()
		return
	}
	os.Exit(m.Run())
}

func TestSpreadAndRatios(t *testing.T) {
	rep := aggregate([][]measure{
		{{Row: "1a", Name: "x", Value: 10, Base: 100}},
		{{Row: "1a", Name: "x", Value: 30, Base: 100}},
		{{Row: "1a", Name: "x", Value: 20, Base: 50}},
	})
	require.Len(t, rep.Rows, 1)
	r := rep.Rows[0]
	assert.Equal(t, Spread{Median: 20, Min: 10, Max: 30}, r.Value)
	assert.Equal(t, Spread{Median: 100, Min: 50, Max: 100}, r.Base)
	assert.Equal(t, Spread{Median: 0.3, Min: 0.1, Max: 0.4}, r.Ratio, "the ratio is taken per run, then its median")
	assert.Equal(t, "20.0 (10.0–30.0)", r.Value.String())
	assert.Equal(t, Spread{Median: 2.5, Min: 2, Max: 3}, spread([]float64{3, 2}), "an even count has the mean of the middle two")
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "8MiB": 8 << 20, "3KiB": 3 << 10, "100": 100} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "GiB", "-1MiB", "1 GB"} {
		_, err := parseSize(bad)
		assert.Error(t, err, bad)
	}
}

func TestRefusesBadFlags(t *testing.T) {
	var out, errs bytes.Buffer
	assert.ErrorContains(t, run([]string{"-only", "12"}, &out, &errs), "row numbers 1 to 11")
	assert.ErrorContains(t, run([]string{"-count", "0", "-bin", t.TempDir()}, &out, &errs), "-count")
	assert.ErrorContains(t, run([]string{"-bin", t.TempDir()}, &out, &errs), "not built")
}

// TestQuick runs the built daemon and sandbox (made here) through the
// accept rows and the CMS row at smoke sizes, so the command cannot rot.
// Building the two binaries is most of its time: -short skips it.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon and the sandbox and runs them as child processes")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("row 11 needs openssl")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "github.com/efm-go/efm/cmd/integrasjonspunkt", "github.com/efm-go/efm/cmd/efm-sandbox")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	var stdout, stderr bytes.Buffer
	err = run([]string{"-quick", "-json", "-only", "2,11", "-bin", bin, "-work", t.TempDir()}, &stdout, &stderr)
	require.NoError(t, err, "log:\n%s", stderr.String())
	var rep Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), "%s", stdout.String())
	rows := map[string]Row{}
	for _, r := range rep.Rows {
		rows[r.Row] = r
	}
	assert.Len(t, rows, 6, "%s", stdout.String())
	for _, name := range []string{"2a", "2b", "11a", "11b", "11c", "11d"} {
		r, ok := rows[name]
		if assert.True(t, ok, "row %s missing", name) {
			assert.Positive(t, r.Value.Median, "row %s", name)
			assert.Positive(t, r.Base.Median, "row %s baseline", name)
			assert.Positive(t, r.Ratio.Median, "row %s ratio", name)
		}
	}
	assert.Equal(t, 1, rep.Runs)
	assert.True(t, rep.Quick)
}
