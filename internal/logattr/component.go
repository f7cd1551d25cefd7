package logattr

import (
	"context"
	"log/slog"
)

// OneComponent wraps h so a line carries the component key once. Parts hand
// their logger down (central log → shipper, pipeline → resolver), each adding
// its own Component; slog's handlers would print every one of them, and a
// JSON object with a duplicate key is read differently by every log tool.
// The innermost component wins: it names the part that wrote the line.
func OneComponent(h slog.Handler) slog.Handler { return &oneComponent{h: h} }

type oneComponent struct {
	h         slog.Handler
	component *slog.Attr // nil until a With gives one
	grouped   bool       // after WithGroup a "component" is the group's own key
}

func (o *oneComponent) Enabled(ctx context.Context, l slog.Level) bool { return o.h.Enabled(ctx, l) }

func (o *oneComponent) Handle(ctx context.Context, r slog.Record) error {
	if o.component != nil {
		r = r.Clone()
		r.AddAttrs(*o.component)
	}
	return o.h.Handle(ctx, r)
}

func (o *oneComponent) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *o
	rest := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		if !o.grouped && a.Key == "component" {
			a := a
			n.component = &a
			continue
		}
		rest = append(rest, a)
	}
	if len(rest) > 0 {
		n.h = o.h.WithAttrs(rest)
	}
	return &n
}

func (o *oneComponent) WithGroup(name string) slog.Handler {
	if name == "" {
		return o
	}
	// The component is written before the group opens, so it stays at the top level.
	h := o.h
	if o.component != nil {
		h = h.WithAttrs([]slog.Attr{*o.component})
	}
	return &oneComponent{h: h.WithGroup(name), grouped: true}
}
