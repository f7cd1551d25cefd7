package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/integrasjonspunkt/store/storegen"
)

// smallStore is the size rows 9's queries are compared against.
const smallStore = 10_000

// smallSize is the baseline store's size for a big store of n: 10 k, or a
// tenth of a smaller -store-size.
func smallSize(n int) int { return max(1, min(smallStore, n/10)) }

// genEnd is the last generated message's creation time, taken from the
// clock: a store dated in a fixed past would age into the daemon's
// retention (history pruned after 24 months, queued messages expired after
// a day), and the daemon would be deleting and expiring while it is measured.
var genEnd = time.Now().Add(-time.Minute).Truncate(time.Second)

// genStep is the time between two generated messages: a second for
// delivered ones (the row 9 windows then hold as many messages in both
// stores), 40 ms for queued ones, so a million stay within their lifetime.
func genStep(st storegen.State) time.Duration {
	if st == storegen.Queued {
		return 40 * time.Millisecond
	}
	return time.Second
}

// genLast is the time of the last status of a generated store.
func genLast() time.Time { return genEnd.Add(3 * time.Second) }

// generated returns the path of a store.db of n messages in state st, made
// once per efm-bench run with storegen (straight into the store's schema,
// not through the API) and copied for every daemon that uses it.
func (e *env) generated(n int, st storegen.State) (string, error) {
	path := filepath.Join(e.o.work, fmt.Sprintf("gen-%s-%d", st, n), "store.db")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	t0 := time.Now()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return "", err
	}
	if _, err := storegen.Generate(ctx, s, storegen.Options{N: n, State: st, Start: genEnd.Add(-time.Duration(n-1) * genStep(st)), Step: genStep(st)}); err != nil {
		s.Close()
		return "", fmt.Errorf("generating %d %s messages: %w", n, st, err)
	}
	if err := s.Close(); err != nil {
		return "", err
	}
	e.logf("generated %d %s messages in %s (%d MB)", n, st, time.Since(t0).Round(time.Millisecond), dirSize(filepath.Dir(path), func(string) bool { return true })>>20)
	return path, nil
}

// storeDaemon starts a daemon on a copy of the store at from ("" for an
// empty store).
func (e *env) storeDaemon(name, from string) (*daemon, error) {
	sb, err := e.sandbox()
	if err != nil {
		return nil, err
	}
	dir := e.dir(name)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	if from != "" {
		if err := copyFile(from, filepath.Join(data, "store.db")); err != nil {
			return nil, err
		}
	}
	conf, port, err := daemonConfig(sb, dir, withDefaults(nil))
	if err != nil {
		return nil, err
	}
	return runDaemon(e.o.bin, conf, port, data, filepath.Join(dir, "daemon.log"))
}

func copyFile(from, to string) error {
	return fileToFile(from, to, func(w io.Writer, r io.Reader) error {
		_, err := io.Copy(w, r)
		return err
	})
}

// rowStore is rows 7 and 8 (from exec to ready on a store of -store-size
// delivered, then queued messages, against an empty store) and 9 (four
// pages of the local API at -store-size against the same at 10 k).
func rowStore(e *env) ([]measure, error) {
	n := e.o.storeSize
	var out []measure
	empty, err := e.storeDaemon("empty", "")
	if err != nil {
		return nil, err
	}
	empty.stop()
	e.logf("empty store: ready in %s", empty.started.Round(time.Millisecond))
	if e.o.wants(7, 9) {
		big, err := e.generated(n, storegen.Delivered)
		if err != nil {
			return nil, err
		}
		d, err := e.storeDaemon("delivered", big)
		if err != nil {
			return nil, err
		}
		e.logf("%d delivered: ready in %s", n, d.started.Round(time.Millisecond))
		out = append(out, measure{Row: "7", Name: fmt.Sprintf("start to ready, %d delivered messages", n), Unit: "s",
			Value: d.started.Seconds(), BaseName: "empty store", Base: empty.started.Seconds(), Goal: "< 2 s"})
		if e.o.wants(9) {
			small, err := e.generated(smallSize(n), storegen.Delivered)
			if err != nil {
				d.stop()
				return nil, err
			}
			sd, err := e.storeDaemon("delivered-small", small)
			if err != nil {
				d.stop()
				return nil, err
			}
			qs, err := queries(e, sd, d, n)
			sd.stop()
			if err != nil {
				d.stop()
				return nil, err
			}
			out = append(out, qs...)
		}
		d.stop()
	}
	if e.o.wants(8) {
		queued, err := e.generated(n, storegen.Queued)
		if err != nil {
			return nil, err
		}
		d, err := e.storeDaemon("queued", queued)
		if err != nil {
			return nil, err
		}
		d.stop()
		e.logf("%d queued: ready in %s", n, d.started.Round(time.Millisecond))
		out = append(out, measure{Row: "8", Name: fmt.Sprintf("start to ready, %d queued messages", n), Unit: "s",
			Value: d.started.Seconds(), BaseName: "empty store", Base: empty.started.Seconds(), Goal: "< 2 s"})
	}
	return out, nil
}

// queries times the row 9 pages on the small store's daemon and the big
// one's: the median of several calls each.
func queries(e *env, small, big *daemon, n int) ([]measure, error) {
	recv, err := receiver(big)
	if err != nil {
		return nil, err
	}
	// The last hour of each store holds as many messages (one a second).
	l := genLast()
	window := "&fromDateTime=" + url.QueryEscape(l.Add(-time.Hour).Format(time.RFC3339)) + "&toDateTime=" + url.QueryEscape(l.Add(time.Minute).Format(time.RFC3339))
	pages := []struct{ row, name, big, small string }{
		{"9a", "GET /api/statuses?status=LEVERT&fromDateTime…", "/api/statuses?status=LEVERT" + window, "/api/statuses?status=LEVERT" + window},
		{"9b", "GET /api/statuses?size=10", "/api/statuses?size=10", ""},
		{"9c", "GET /api/conversations?receiverIdentifier=…", "/api/conversations?receiverIdentifier=" + recv, ""},
		{"9d", "GET /api/conversations", "/api/conversations", ""},
	}
	calls := 15
	if e.o.quick {
		calls = 3
	}
	var out []measure
	for _, p := range pages {
		sp := p.small
		if sp == "" {
			sp = p.big
		}
		b, err := timeGet(big.base+p.big, calls)
		if err != nil {
			return nil, err
		}
		s, err := timeGet(small.base+sp, calls)
		if err != nil {
			return nil, err
		}
		out = append(out, measure{Row: p.row, Name: p.name + fmt.Sprintf(", %d messages", n), Unit: "ms", Value: ms(b),
			BaseName: fmt.Sprintf("the same, %d messages", smallSize(n)), Base: ms(s), Goal: "< 2× the baseline"})
	}
	return out, nil
}

// receiver is the receiver of one of the store's conversations.
func receiver(d *daemon) (string, error) {
	var conv struct {
		Content []struct {
			ReceiverIdentifier string `json:"receiverIdentifier"`
		} `json:"content"`
	}
	if err := getJSON(d.base+"/api/conversations?size=1", &conv); err != nil {
		return "", err
	}
	if len(conv.Content) == 0 {
		return "", fmt.Errorf("the generated store shows no conversations")
	}
	return conv.Content[0].ReceiverIdentifier, nil
}

func getJSON(u string, v any) error {
	res, err := http.Get(u)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, res.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// timeGet calls u calls times after one untimed call and returns the
// median time.
func timeGet(u string, calls int) (time.Duration, error) {
	var ds []time.Duration
	for i := range calls + 1 {
		t0 := time.Now()
		res, err := http.Get(u)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %d", u, res.StatusCode)
		}
		if i > 0 {
			ds = append(ds, time.Since(t0))
		}
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}
