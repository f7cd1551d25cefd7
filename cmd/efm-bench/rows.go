package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/efm-go/efm/internal/procstat"
)

const multipartPath = "/api/messages/out/multipart"

// daemonDefaults are the settings of every measured daemon beyond the
// sandbox's: the workers BenchmarkDPO_Throughput uses.
var daemonDefaults = map[string]string{"difi.move.queue.concurrency": "32"}

func withDefaults(extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range daemonDefaults {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// pauseBroker makes the sandbox's broker hold every file-transfer
// initialisation, so the pipeline cannot send (see the package comment);
// the returned func lifts it.
func pauseBroker(sb *sandbox) (func(), error) {
	f := map[string]any{"path": "/broker/api/v1/filetransfer", "method": "POST", "delay": "10m"}
	if err := sb.call("altinn-broker", "POST", "/_sim/faults", f, nil); err != nil {
		return nil, err
	}
	return func() { sb.call("altinn-broker", "DELETE", "/_sim/faults", nil, nil) }, nil
}

// rowAccept is rows 1 (pipeline paused, 16, 64 and 256 clients) and 2
// (pipeline running, 16 clients): closed-loop accepted msg/s against the
// bare server, each client count measured daemon first, then bare.
func rowAccept(e *env, running bool) ([]measure, error) {
	sb, err := e.sandbox()
	if err != nil {
		return nil, err
	}
	bare, barePID, err := e.bareServer()
	if err != nil {
		return nil, err
	}
	row, state, clients := "1", "paused", []int{16, 64, 256}
	extra := map[string]string{}
	if running {
		row, state, clients = "2", "running", []int{16}
	} else {
		extra["efm.pipeline.backoff"] = "1h"
		extra["efm.pipeline.sweep-interval"] = "1h"
		resume, err := pauseBroker(sb)
		if err != nil {
			return nil, err
		}
		defer resume()
	}
	d, err := e.daemon("accept-"+state, withDefaults(extra))
	if err != nil {
		return nil, err
	}
	defer d.stop()
	warm, dur := e.windows()
	var out []measure
	for i, c := range clients {
		got, err := closedLoop(d.base+multipartPath, d.pid(), c, warm, dur)
		if err != nil {
			return nil, fmt.Errorf("daemon, %d clients: %w", c, err)
		}
		base, err := closedLoop(bare, barePID, c, warm, dur)
		if err != nil {
			return nil, fmt.Errorf("bare server, %d clients: %w", c, err)
		}
		e.logf("%d clients, pipeline %s: daemon %.0f msg/s (CPU %s per message), bare %.0f msg/s (%s)",
			c, state, got.rate, got.cpuPerMsg, base.rate, base.cpuPerMsg)
		goal := ""
		if c == 16 {
			goal = map[bool]string{false: "≥ 5000 and ≥ 20 % of bare", true: "≥ 2000"}[running]
		}
		out = append(out, measure{Row: row + string(rune('a'+i)), Name: fmt.Sprintf("accepted, 10 KB E5, %d clients, pipeline %s", c, state),
			Unit: "msg/s", Value: got.rate, BaseName: "bare net/http", Base: base.rate, Goal: goal})
		if c == 16 {
			// The rate follows whatever else the cores run; the CPU spent
			// per message is the accept path's own cost.
			out = append(out, measure{Row: row + string(rune('a'+len(clients))), Name: fmt.Sprintf("daemon CPU per accepted message, 16 clients, pipeline %s", state),
				Unit: "ms", Value: ms(got.cpuPerMsg), BaseName: "bare server CPU per request", Base: ms(base.cpuPerMsg)})
		}
	}
	return out, nil
}

// deliveryBatch is the number of messages rows 3, 4 and 6 send.
func (e *env) deliveryBatch() int {
	if e.o.quick {
		return 40
	}
	return 2000
}

// rowDelivery is rows 3, 4 and 6 from one batch: messages sent by 16
// clients until all reached LEVERT; the daemon's CPU over the batch, the
// rate from the first send to the last LEVERT, and the store's growth. The
// baseline is the bare server taking the same batch.
func rowDelivery(e *env) ([]measure, error) {
	sb, err := e.sandbox()
	if err != nil {
		return nil, err
	}
	bare, barePID, err := e.bareServer()
	if err != nil {
		return nil, err
	}
	n := e.deliveryBatch()
	d, err := e.daemon("delivery", withDefaults(nil))
	if err != nil {
		return nil, err
	}
	defer d.stop()
	storeFiles := func(rel string) bool { return strings.HasPrefix(filepath.Base(rel), "store.db") }
	payloadFiles := func(rel string) bool { return strings.HasPrefix(rel, "payload"+string(filepath.Separator)) }
	store0, payload0 := dirSize(d.data, storeFiles), dirSize(d.data, payloadFiles)
	live0, err := liveBytes(filepath.Join(d.data, "store.db"))
	if err != nil {
		return nil, err
	}
	cpu0, _ := procstat.CPU(d.pid())
	sbcpu0, _ := procstat.CPU(sb.pid())
	t0 := time.Now()
	if _, err := sendN(d.base+multipartPath, n, 16); err != nil {
		return nil, err
	}
	accepted := time.Since(t0)
	t1, err := d.waitCount("LEVERT", n, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	cpu1, _ := procstat.CPU(d.pid())
	sbcpu1, _ := procstat.CPU(sb.pid())
	el := t1.Sub(t0)
	// What the daemon does at the final status (payloads removed) it may do
	// just after recording it, and the central log's events wait in the
	// store's outbox until shipped: row 6 is what stays, so it waits for
	// both. A clean stop then checkpoints the WAL into store.db, so the
	// size is the store's, not the WAL's high-water mark.
	time.Sleep(2 * time.Second)
	backlog := -1.0
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if backlog, err = d.gauge(context.Background(), "efm_central_log_backlog_events"); err == nil && backlog == 0 {
			break
		}
	}
	d.stop()
	store1, payload1 := dirSize(d.data, storeFiles), dirSize(d.data, payloadFiles)
	live1, err := liveBytes(filepath.Join(d.data, "store.db"))
	if err != nil {
		return nil, err
	}

	bcpu0, _ := procstat.CPU(barePID)
	b0 := time.Now()
	if _, err := sendN(bare, n, 16); err != nil {
		return nil, err
	}
	bel := time.Since(b0)
	bcpu1, _ := procstat.CPU(barePID)

	perMsg := ms(cpu1-cpu0) / float64(n)
	growth := float64(live1-live0+payload1-payload0) / float64(n)
	e.logf("%d messages: LEVERT after %s (accepted in %s), daemon CPU %s, sandbox CPU %s, store +%d B, payload +%d B",
		n, el.Round(time.Millisecond), accepted.Round(time.Millisecond), cpu1-cpu0, sbcpu1-sbcpu0, store1-store0, payload1-payload0)
	return []measure{
		{Row: "3", Name: "daemon CPU per message delivered over DPO", Unit: "ms", Value: perMsg,
			BaseName: "bare server CPU per request", Base: ms(bcpu1-bcpu0) / float64(n), Goal: "≤ 2.5 ms",
			Note: fmt.Sprintf("sandbox (broker and peers) %.2f ms/msg", ms(sbcpu1-sbcpu0)/float64(n))},
		{Row: "4", Name: "sustained accept → LEVERT, 16 clients", Unit: "msg/s", Value: float64(n) / el.Seconds(),
			BaseName: "bare net/http", Base: float64(n) / bel.Seconds(), Goal: "≥ 500/s",
			Note: fmt.Sprintf("%d messages", n)},
		{Row: "6", Name: "store growth per message at LEVERT: pages in use + payload dir", Unit: "B", Value: growth,
			BaseName: "payload size", Base: payloadSize, Goal: "metadata ≤ 500 B, payload removed",
			Note: fmt.Sprintf("store.db pages in use %.0f B, payload dir %.0f B; store.db(+wal) file size %.0f B (keeps freed pages); central log events unshipped at the stop: %.0f",
				float64(live1-live0)/float64(n), float64(payload1-payload0)/float64(n), float64(store1-store0)/float64(n), backlog)},
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rowLatency is row 5: an open loop at 100 msg/s, the time from each 200 to
// its SENDT webhook; quiet, then with one spinning process per core
// (efm-bench itself in its spin role, at the same priority as the daemon).
// Quiet is measured against the bare server's request round trip at the
// same rate, busy against quiet.
func rowLatency(e *env) ([]measure, error) {
	bare, _, err := e.bareServer()
	if err != nil {
		return nil, err
	}
	d, err := e.daemon("latency", withDefaults(nil))
	if err != nil {
		return nil, err
	}
	defer d.stop()
	h, err := startHooks()
	if err != nil {
		return nil, err
	}
	defer h.srv.Close()
	if err := h.subscribe(d); err != nil {
		return nil, err
	}
	dur := 10 * time.Second
	if e.o.quick {
		dur = 2 * time.Second
	}
	measureP99 := func() (p50, p99 time.Duration, err error) {
		acc, _, err := openLoop(d.base+multipartPath, 100, dur)
		if err != nil {
			return 0, 0, err
		}
		ids := make([]string, 0, len(acc))
		for id := range acc {
			ids = append(ids, id)
		}
		if missing := h.wait(ids, "SENDT", 3*time.Minute); missing > 0 {
			return 0, 0, fmt.Errorf("%d of %d messages not SENDT", missing, len(ids))
		}
		var lat []time.Duration
		for id, at := range acc {
			s, _ := h.time(id, "SENDT")
			lat = append(lat, s.Sub(at))
		}
		return percentile(lat, .5), percentile(lat, .99), nil
	}
	_, bareRTT, err := openLoop(bare, 100, dur)
	if err != nil {
		return nil, err
	}
	q50, q99, err := measureP99()
	if err != nil {
		return nil, err
	}
	var spinners []*exec.Cmd
	for range runtime.NumCPU() {
		cmd, _, err := self(roleSpin)
		if err != nil {
			return nil, err
		}
		spinners = append(spinners, cmd)
	}
	b50, b99, err := measureP99()
	for _, c := range spinners {
		kill(c)
	}
	if err != nil {
		return nil, err
	}
	e.logf("accept → SENDT at 100/s: quiet p50 %s p99 %s, busy p50 %s p99 %s", q50, q99, b50, b99)
	return []measure{
		{Row: "5a", Name: "p99 accept → SENDT at 100 msg/s, quiet", Unit: "ms", Value: ms(q99),
			BaseName: "bare server p99 round trip", Base: ms(percentile(bareRTT, .99)), Note: fmt.Sprintf("p50 %.1f ms", ms(q50))},
		{Row: "5b", Name: fmt.Sprintf("p99 accept → SENDT at 100 msg/s, %d spinning processes", runtime.NumCPU()), Unit: "ms", Value: ms(b99),
			BaseName: "the same, quiet", Base: ms(q99), Goal: "< 100 ms", Note: fmt.Sprintf("p50 %.1f ms", ms(b50))},
	}, nil
}

// randomReader is incompressible bytes, cheap to make.
type randomReader struct {
	r    *rand.ChaCha8
	left int64
}

func (r *randomReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	r.r.Read(p)
	r.left -= int64(len(p))
	return len(p), nil
}

// rowBigFile is row 10: a message with one incompressible attachment of
// -big-size through E1, E3 (PUT, timed) and E4 over DPO, against dd writing
// the same size with conv=fsync into the same work dir; the daemon's peak
// RSS growth over upload and delivery; and whether it reached LEVERT.
func rowBigFile(e *env) ([]measure, error) {
	size := e.o.bigSize
	d, err := e.daemon("bigfile", withDefaults(nil))
	if err != nil {
		return nil, err
	}
	defer d.stop()
	ddFile := filepath.Join(e.o.work, "dd.bin")
	t0 := time.Now()
	dd := exec.Command("dd", "if=/dev/zero", "of="+ddFile, "bs=1M", fmt.Sprintf("count=%d", max(1, size>>20)), "conv=fsync")
	if out, err := dd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dd: %v: %s", err, out)
	}
	ddRate := float64(max(1, size>>20)) / time.Since(t0).Seconds()
	os.Remove(ddFile)

	created, err := d.createMessage()
	if err != nil {
		return nil, err
	}
	base, _ := procstat.RSS(d.pid())
	peak := base
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			r, _ := procstat.RSS(d.pid())
			peak = max(peak, r)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	t1 := time.Now()
	putErr := d.put(created, "Stor", "stor.bin", &randomReader{r: rand.NewChaCha8([32]byte{1}), left: size}, size)
	put := time.Since(t1)
	status := "not sent"
	if putErr == nil {
		if err := post(http.DefaultClient, d.base+"/api/messages/out/"+created, "application/json", nil); err != nil {
			putErr = err
		} else {
			status = d.waitFinal(created, 30*time.Minute)
		}
	}
	close(stop)
	<-sampled
	if putErr != nil {
		e.logf("1 big attachment: %v", putErr)
		status = "refused: " + putErr.Error()
	}
	levert := 0.0
	if status == "LEVERT" {
		levert = 1
	}
	e.logf("%d MiB: PUT %s, dd %.0f MB/s, RSS %d → peak %d MB, status %s", size>>20, put.Round(time.Millisecond), ddRate, base>>20, peak>>20, status)
	return []measure{
		{Row: "10a", Name: fmt.Sprintf("%d MiB incompressible attachment, PUT (E3)", size>>20), Unit: "MB/s", Value: float64(size>>20) / put.Seconds(),
			BaseName: "dd conv=fsync, same disk", Base: ddRate},
		{Row: "10b", Name: "daemon RSS growth, upload to final status", Unit: "MB", Value: float64(peak-base) / (1 << 20),
			BaseName: "RSS before", Base: float64(base) / (1 << 20), Goal: "< 64 MB"},
		{Row: "10c", Name: "reached LEVERT (1 yes, 0 no)", Unit: "", Value: levert, Goal: "1", Note: "final status " + status},
	}, nil
}

// createMessage is E1 for the avtalt message; it returns the message id.
func (d *daemon) createMessage() (string, error) {
	id := uuid.NewString()
	if err := post(http.DefaultClient, d.base+"/api/messages/out", "application/json", sbdJSON(id)); err != nil {
		return "", err
	}
	return id, nil
}

// put is E3: one attachment streamed from r.
func (d *daemon) put(id, name, filename string, r io.Reader, size int64) error {
	req, err := http.NewRequest("PUT", d.base+"/api/messages/out/"+id, r)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Disposition", "attachment; name="+name+"; filename="+filename)
	res, err := (&http.Client{Timeout: time.Hour}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b := make([]byte, 2000)
		n, _ := res.Body.Read(b)
		return fmt.Errorf("PUT: %d %s", res.StatusCode, b[:n])
	}
	return nil
}

// waitFinal polls E20 until the message has a final status and returns it.
func (d *daemon) waitFinal(id string, within time.Duration) string {
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		sts, err := d.statuses(context.Background(), id)
		if err == nil && len(sts) > 0 {
			last = sts[len(sts)-1]
			for _, s := range sts {
				if s == "LEVERT" || s == "FEIL" || s == "LEVETID_UTLOPT" || s == "LEST" {
					return s
				}
			}
		}
		if d.exited() {
			return "daemon exited"
		}
		time.Sleep(500 * time.Millisecond)
	}
	return "still " + last
}
