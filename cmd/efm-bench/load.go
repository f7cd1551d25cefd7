package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/efm-go/efm/internal/procstat"
)

// The message every row sends: E5's one-step multipart of an avtalt message
// with a 10 KB attachment to an organisation the sandbox's broker plays
// over DPO, the body of integrasjonspunkt/api's BenchmarkMultipartAccept.
const (
	receiverOrg = "910076787"
	avtaltProc  = "urn:no:difi:profile:avtalt:avtalt:ver1.0"
	payloadSize = 10 << 10
)

// sbdJSON is the avtalt SBD; id, when set, is its instanceIdentifier (the
// daemon makes one up otherwise).
func sbdJSON(id string) []byte {
	di := map[string]any{"standard": "urn:no:difi:avtalt:xsd::avtalt", "typeVersion": "2.0", "type": "avtalt"}
	if id != "" {
		di["instanceIdentifier"] = id
	}
	doc := map[string]any{
		"standardBusinessDocumentHeader": map[string]any{
			"headerVersion":          "1.0",
			"documentIdentification": di,
			"businessScope":          map[string]any{"scope": []any{map[string]any{"type": "ConversationId", "identifier": avtaltProc}}},
			"receiver":               []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + receiverOrg}}},
		},
		"avtalt": map[string]any{"identifier": "no.example.tilskudd.v1", "content": map[string]any{"sum": 100}},
	}
	b, _ := json.Marshal(doc)
	return b
}

var attachment = bytes.Repeat([]byte("x"), payloadSize)

// messageBody is the multipart body and its content type.
func messageBody(id string) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="sbd"; filename="sbd.json"`)
	h.Set("Content-Type", "application/json")
	w, _ := mw.CreatePart(h)
	w.Write(sbdJSON(id))
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="Vedlegg"; filename="vedlegg.pdf"`)
	h.Set("Content-Type", "application/pdf")
	w, _ = mw.CreatePart(h)
	w.Write(attachment)
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func newClient(clients int) *http.Client {
	return &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2}}
}

// post sends one body and fails on anything but 200.
func post(c *http.Client, url, ct string, body []byte) error {
	res, err := c.Post(url, ct, bytes.NewReader(body))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, res.StatusCode, b)
	}
	return nil
}

// loopResult is a closed-loop figure: answers per second, and the server
// process's CPU time (user+system) per answer over the same window, which
// a machine shared with other work disturbs less than the rate.
type loopResult struct {
	rate      float64
	cpuPerMsg time.Duration
}

// closedLoop runs clients that each send the same body as soon as the last
// answer came, and returns the answers per second within dur after warm and
// the CPU time of process pid per answer.
func closedLoop(url string, pid, clients int, warm, dur time.Duration) (loopResult, error) {
	body, ct := messageBody("")
	c := newClient(clients)
	defer c.Transport.(*http.Transport).CloseIdleConnections()
	var counting, stop atomic.Bool
	var n atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for !stop.Load() {
				if err := post(c, url, ct, body); err != nil {
					firstErr.CompareAndSwap(nil, err)
					stop.Store(true)
					return
				}
				if counting.Load() {
					n.Add(1)
				}
			}
		})
	}
	time.Sleep(warm)
	cpu0, _ := procstat.CPU(pid)
	counting.Store(true)
	t0 := time.Now()
	time.Sleep(dur)
	counting.Store(false)
	el := time.Since(t0)
	cpu1, _ := procstat.CPU(pid)
	stop.Store(true)
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return loopResult{}, err
	}
	got := n.Load()
	if got == 0 {
		return loopResult{}, fmt.Errorf("%s: no answer within %s", url, dur)
	}
	return loopResult{rate: float64(got) / el.Seconds(), cpuPerMsg: (cpu1 - cpu0) / time.Duration(got)}, nil
}

// sendN sends n messages from clients and returns their ids.
func sendN(url string, n, clients int) ([]string, error) {
	c := newClient(clients)
	defer c.Transport.(*http.Transport).CloseIdleConnections()
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	ids := make([]string, n)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range next {
				ids[i] = uuid.NewString()
				body, ct := messageBody(ids[i])
				if err := post(c, url, ct, body); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return ids, nil
}

// openLoop sends rate messages a second for dur whatever the answers take,
// and returns when each was accepted (its 200 arrived) and how long the
// request took.
func openLoop(url string, rate int, dur time.Duration) (map[string]time.Time, []time.Duration, error) {
	c := newClient(64)
	defer c.Transport.(*http.Transport).CloseIdleConnections()
	var mu sync.Mutex
	accepted := map[string]time.Time{}
	var rtt []time.Duration
	var firstErr atomic.Value
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for range int(dur.Seconds() * float64(rate)) {
		<-tick.C
		wg.Go(func() {
			id := uuid.NewString()
			body, ct := messageBody(id)
			t0 := time.Now()
			if err := post(c, url, ct, body); err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			now := time.Now()
			mu.Lock()
			accepted[id] = now
			rtt = append(rtt, now.Sub(t0))
			mu.Unlock()
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, nil, err
	}
	return accepted, rtt, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// hooks records when the daemon's status webhooks arrive, as a client
// system learns of them.
type hooks struct {
	mu  sync.Mutex
	at  map[string]map[string]time.Time // messageId → status → arrival
	srv *http.Server
	url string
}

func startHooks() (*hooks, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hooks{at: map[string]map[string]time.Time{}, url: "http://" + ln.Addr().String()}
	h.srv = &http.Server{Handler: h}
	go h.srv.Serve(ln)
	return h, nil
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		MessageID string `json:"messageId"`
		Status    string `json:"status"`
	}
	if json.NewDecoder(r.Body).Decode(&ev) == nil && ev.MessageID != "" {
		now := time.Now()
		h.mu.Lock()
		if h.at[ev.MessageID] == nil {
			h.at[ev.MessageID] = map[string]time.Time{}
		}
		if _, ok := h.at[ev.MessageID][ev.Status]; !ok {
			h.at[ev.MessageID][ev.Status] = now
		}
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (h *hooks) time(id, status string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.at[id][status]
	return t, ok
}

// subscribe registers the webhook for every outgoing status (E24).
func (h *hooks) subscribe(d *daemon) error {
	body := `{"name": "efm-bench", "pushEndpoint": "` + h.url + `", "resource": "messages", "event": "status", "filter": "direction=OUTGOING"}`
	return post(http.DefaultClient, d.base+"/api/subscriptions", "application/json", []byte(body))
}

// wait waits until every id has status; it returns how many did not.
func (h *hooks) wait(ids []string, status string, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		missing := 0
		for _, id := range ids {
			if _, ok := h.time(id, status); !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Roles efm-bench plays as its own child process (EFM_BENCH_ROLE).
const (
	roleBare = "bare" // a bare net/http server that reads each body and answers {}
	roleSpin = "spin" // one core kept busy
)

// serveBare is the baseline of the accept rows: the least an HTTP server
// in Go does with the same request.
func serveBare() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println("http://" + ln.Addr().String())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
}

func spin() {
	runtime.GOMAXPROCS(1)
	x := 0
	for {
		x++
	}
}

// self runs efm-bench again in a role; for the bare server it returns the
// URL it printed.
func self(role string) (*exec.Cmd, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "EFM_BENCH_ROLE="+role)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	children.Store(cmd, true)
	if role != roleBare {
		return cmd, "", nil
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, "", fmt.Errorf("bare server: %w", err)
	}
	return cmd, strings.TrimSpace(line), nil
}

func kill(cmd *exec.Cmd) {
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Kill()
		cmd.Wait()
		children.Delete(cmd)
	}
}
