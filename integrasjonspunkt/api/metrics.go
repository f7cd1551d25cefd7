package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Sample is one metric value. Help and Type are written once per name, from
// the first sample that has them.
type Sample struct {
	Name   string            `json:"name"`
	Help   string            `json:"-"`
	Type   string            `json:"type,omitempty"` // gauge (default) or counter
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

func (s *Server) prometheus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	seen := map[string]bool{}
	for _, m := range s.samples(r.Context()) {
		if !seen[m.Name] {
			seen[m.Name] = true
			if m.Help != "" {
				fmt.Fprintf(&b, "# HELP %s %s\n", m.Name, m.Help)
			}
			typ := m.Type
			if typ == "" {
				typ = "gauge"
			}
			fmt.Fprintf(&b, "# TYPE %s %s\n", m.Name, typ)
		}
		b.WriteString(m.Name)
		if len(m.Labels) > 0 {
			keys := make([]string, 0, len(m.Labels))
			for k := range m.Labels {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s=%s", k, strconv.Quote(m.Labels[k]))
			}
			b.WriteByte('}')
		}
		fmt.Fprintf(&b, " %s\n", strconv.FormatFloat(m.Value, 'g', -1, 64))
	}
	_, _ = w.Write([]byte(b.String()))
}

func (s *Server) metricsJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.samples(r.Context()))
}

// samples orders by name so series of one metric stand together, as the
// text format requires.
func (s *Server) samples(ctx context.Context) []Sample {
	if s.d.Metrics == nil {
		return nil
	}
	ms := append(s.d.Metrics(ctx), s.requests.samples()...)
	slices.SortStableFunc(ms, func(a, b Sample) int { return strings.Compare(a.Name, b.Name) })
	return ms
}
