package asic

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// A small DOM and Canonical XML 1.0 (inclusive, without comments) of an element subtree:
// enough to check an XAdES signature, where SignedInfo and SignedProperties are digested in
// canonical form. encoding/xml's RawToken keeps prefixes as written, which canonical form
// needs; the namespace scope is tracked here.

const (
	nsDS    = "http://www.w3.org/2000/09/xmldsig#"
	nsXAdES = "http://uri.etsi.org/01903/v1.3.2#"
)

// maxXMLDepth and maxXMLNodes bound the DOM of a hostile signatures.xml.
const (
	maxXMLDepth = 64
	maxXMLNodes = 100000
)

type xnode struct {
	prefix, local string
	attrs         []xml.Attr // as written: Name.Space holds the prefix
	children      []any      // *xnode or string (character data)
	scope         map[string]string
	parent        *xnode
}

func (n *xnode) uri() string { return n.scope[n.prefix] }

func (n *xnode) is(ns, local string) bool { return n.local == local && n.uri() == ns }

func (n *xnode) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

func (n *xnode) elements() []*xnode {
	var out []*xnode
	for _, c := range n.children {
		if e, ok := c.(*xnode); ok {
			out = append(out, e)
		}
	}
	return out
}

func (n *xnode) child(ns, local string) *xnode {
	for _, e := range n.elements() {
		if e.is(ns, local) {
			return e
		}
	}
	return nil
}

func (n *xnode) text() string {
	var b strings.Builder
	for _, c := range n.children {
		if s, ok := c.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

// walk calls fn for n and every element below it, in document order.
func (n *xnode) walk(fn func(*xnode)) {
	fn(n)
	for _, e := range n.elements() {
		e.walk(fn)
	}
}

func parseXML(data []byte) (*xnode, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var root, cur *xnode
	nodes := 0
	depth := 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parsing xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			nodes++
			depth++
			if nodes > maxXMLNodes || depth > maxXMLDepth {
				return nil, fmt.Errorf("%w: xml too large or deep", ErrTooLarge)
			}
			n := &xnode{prefix: t.Name.Space, local: t.Name.Local, parent: cur, scope: map[string]string{"xml": "http://www.w3.org/XML/1998/namespace"}}
			if cur != nil {
				for k, v := range cur.scope {
					n.scope[k] = v
				}
			}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					n.scope[""] = a.Value
				case a.Name.Space == "xmlns":
					n.scope[a.Name.Local] = a.Value
				default:
					n.attrs = append(n.attrs, a)
				}
			}
			if _, ok := n.scope[n.prefix]; !ok && n.prefix != "" {
				return nil, fmt.Errorf("parsing xml: undeclared prefix %q", n.prefix)
			}
			if cur == nil {
				if root != nil {
					return nil, errors.New("parsing xml: more than one root element")
				}
				root = n
			} else {
				cur.children = append(cur.children, n)
			}
			cur = n
		case xml.EndElement:
			if cur == nil || t.Name.Space != cur.prefix || t.Name.Local != cur.local {
				return nil, errors.New("parsing xml: mismatched end tag")
			}
			cur = cur.parent
			depth--
		case xml.CharData:
			if cur != nil {
				cur.children = append(cur.children, string(t))
			}
		case xml.Directive:
			// A DTD could declare entities or ID attributes that change what is signed.
			return nil, errors.New("parsing xml: DTDs are not accepted")
		}
	}
	if root == nil || cur != nil {
		return nil, errors.New("parsing xml: no complete root element")
	}
	return root, nil
}

// canonical returns the inclusive C14N 1.0 form of the subtree rooted at n.
func canonical(n *xnode) []byte {
	var b bytes.Buffer
	c14n(&b, n, map[string]string{"": ""})
	return b.Bytes()
}

func c14n(b *bytes.Buffer, n *xnode, rendered map[string]string) {
	type ns struct{ prefix, uri string }
	var decls []ns
	for p, u := range n.scope {
		if p == "xml" {
			continue
		}
		if prev, ok := rendered[p]; ok && prev == u {
			continue
		}
		decls = append(decls, ns{p, u})
	}
	slices.SortFunc(decls, func(a, b ns) int { return strings.Compare(a.prefix, b.prefix) })
	attrs := slices.Clone(n.attrs)
	attrURI := func(a xml.Attr) string {
		if a.Name.Space == "" {
			return ""
		}
		return n.scope[a.Name.Space]
	}
	slices.SortFunc(attrs, func(x, y xml.Attr) int {
		if c := strings.Compare(attrURI(x), attrURI(y)); c != 0 {
			return c
		}
		return strings.Compare(x.Name.Local, y.Name.Local)
	})

	qname := n.local
	if n.prefix != "" {
		qname = n.prefix + ":" + n.local
	}
	b.WriteByte('<')
	b.WriteString(qname)
	next := rendered
	if len(decls) > 0 {
		next = make(map[string]string, len(rendered)+len(decls))
		for k, v := range rendered {
			next[k] = v
		}
	}
	for _, d := range decls {
		if d.prefix == "" {
			b.WriteString(` xmlns="`)
		} else {
			b.WriteString(" xmlns:" + d.prefix + `="`)
		}
		b.WriteString(xmlAttr(d.uri))
		b.WriteByte('"')
		next[d.prefix] = d.uri
	}
	for _, a := range attrs {
		b.WriteByte(' ')
		if a.Name.Space != "" {
			b.WriteString(a.Name.Space + ":")
		}
		b.WriteString(a.Name.Local + `="` + xmlAttr(a.Value) + `"`)
	}
	b.WriteByte('>')
	for _, c := range n.children {
		switch v := c.(type) {
		case string:
			b.WriteString(xmlText(v))
		case *xnode:
			c14n(b, v, next)
		}
	}
	b.WriteString("</" + qname + ">")
}
