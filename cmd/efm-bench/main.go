// Command efm-bench measures the cost per message of the built daemon (issue
// 18), every figure side by side with its baseline in the same run, and
// prints the ratios. It builds nothing: it runs bin/integrasjonspunkt and
// bin/efm-sandbox (the simulators in their own process) as child processes
// against temporary data dirs on free loopback ports, and drives them over
// real HTTP as a client system would.
//
// The machine it runs on is shared and noisy, so every figure is measured
// next to its baseline in the same run, and -count N gives medians with the
// spread (min–max) of N runs. The rows:
//
//	 1  accepted msg/s, closed loop, 16/64/256 clients, pipeline paused      vs a bare net/http server (own process)
//	    (1d: the daemon's CPU per accepted message at 16 clients)           vs the bare server's CPU per request
//	 2  the same at 16 clients with the pipeline running (2b: CPU)          vs the bare server
//	 3  daemon CPU per message delivered over DPO (/proc stat)              vs the bare server's CPU per request
//	 4  sustained accept → LEVERT msg/s                                      vs the bare server's rate
//	 5  p99 accept → SENDT at 100 msg/s, quiet and busy                     vs the bare server's p99 / the quiet p99
//	 6  store growth per message after the final status                     vs the payload's size
//	 7  start to ready with many delivered messages in the store            vs an empty store
//	 8  start to ready with many queued (unsent) messages                   vs an empty store
//	 9  status and conversation pages at the large store                    vs the same pages at 10 k messages
//	10  1 GiB incompressible attachment over DPO: PUT MB/s, RSS, LEVERT     vs dd conv=fsync on the same disk
//	11  CMS AES-256-CBC and -GCM encrypt/decrypt MB/s (packaging/cms)        vs openssl cms, same bytes
//
// "Pipeline paused" (row 1) is the sandbox's broker holding every
// file-transfer initialisation for 10 minutes (its /_sim/faults delay) and
// the daemon's retry delay set to an hour (efm.pipeline.backoff): the first
// few messages are packed and then hang at the broker, every later one is
// taken from the queue once and put back by the channel gate without an
// attempt. The daemon has no switch to pause its pipeline, and none is added
// for a benchmark.
//
// The children inherit efm-bench's environment: EFM_CPUPROFILE=FILE profiles
// the daemon and EFM_SANDBOX_CPUPROFILE=FILE the sandbox, each written when
// efm-bench stops it (one row at a time: every daemon started writes the
// same file).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	switch os.Getenv("EFM_BENCH_ROLE") {
	case roleBare:
		if err := serveBare(); err != nil {
			fmt.Fprintln(os.Stderr, "efm-bench bare server:", err)
			os.Exit(1)
		}
		return
	case roleSpin:
		spin()
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		killChildren()
		fmt.Fprintln(os.Stderr, "efm-bench: interrupted")
		os.Exit(1)
	}()
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "efm-bench:", err)
		os.Exit(1)
	}
}

// measure is one figure of one run beside its baseline.
type measure struct {
	Row      string
	Name     string
	Unit     string
	Value    float64
	BaseName string
	Base     float64
	Goal     string
	Note     string
}

// options are the flags.
type options struct {
	bin, work string
	only      map[int]bool
	count     int
	quick     bool
	json      bool
	storeSize int
	bigSize   int64
	keep      bool
}

func (o *options) wants(rows ...int) bool {
	if len(o.only) == 0 {
		return true
	}
	for _, r := range rows {
		if o.only[r] {
			return true
		}
	}
	return false
}

// runner measures some rows.
type runner struct {
	rows []int
	fn   func(e *env) ([]measure, error)
}

var runners = []runner{
	{[]int{1}, func(e *env) ([]measure, error) { return rowAccept(e, false) }},
	{[]int{2}, func(e *env) ([]measure, error) { return rowAccept(e, true) }},
	{[]int{3, 4, 6}, rowDelivery},
	{[]int{5}, rowLatency},
	{[]int{7, 8, 9}, rowStore},
	{[]int{10}, rowBigFile},
	{[]int{11}, rowCMS},
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("efm-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.bin, "bin", "bin", "`dir` with the built integrasjonspunkt and efm-sandbox (make build)")
	fs.StringVar(&o.work, "work", "", "`dir` for the data dirs (default: a new temporary dir; put it on the disk to measure)")
	only := fs.String("only", "", "comma-separated row `numbers` to run (default: all)")
	fs.IntVar(&o.count, "count", 1, "runs of every row; the table shows medians and min–max")
	fs.BoolVar(&o.quick, "quick", false, "small sizes and short runs: a smoke test, not figures")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of the table")
	fs.IntVar(&o.storeSize, "store-size", 1_000_000, "messages in the generated stores of rows 7-9")
	big := fs.String("big-size", "1GiB", "attachment `size` of row 10 (KiB, MiB, GiB suffixes)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work dir (logs, data dirs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *only != "" {
		o.only = map[int]bool{}
		for _, s := range strings.Split(*only, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 || n > 11 {
				return fmt.Errorf("-only %q: want row numbers 1 to 11", *only)
			}
			o.only[n] = true
		}
	}
	var err error
	if o.bigSize, err = parseSize(*big); err != nil {
		return fmt.Errorf("-big-size: %w", err)
	}
	if o.quick {
		if !flagSet(fs, "store-size") {
			o.storeSize = 20_000
		}
		if !flagSet(fs, "big-size") {
			o.bigSize = 8 << 20
		}
	}
	if o.count < 1 {
		return errors.New("-count must be at least 1")
	}
	for _, b := range []string{"integrasjonspunkt", "efm-sandbox"} {
		if _, err := os.Stat(filepath.Join(o.bin, b)); err != nil {
			return fmt.Errorf("%s not built (make build, or -bin): %w", b, err)
		}
	}
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		return err
	}
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "efm-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(o.work)
		}
	}
	e := &env{o: o, log: stderr}
	defer e.close()
	load := startLoadWatch()
	var all [][]measure
	for i := range o.count {
		var ms []measure
		for _, r := range runners {
			if !o.wants(r.rows...) {
				continue
			}
			fmt.Fprintf(stderr, "efm-bench: run %d/%d, rows %v\n", i+1, o.count, r.rows)
			got, err := r.fn(e)
			if err != nil {
				return fmt.Errorf("rows %v: %w", r.rows, err)
			}
			for _, m := range got {
				if o.wants(rowNumber(m.Row)) {
					ms = append(ms, m)
				}
			}
		}
		all = append(all, ms)
	}
	rep := aggregate(all)
	rep.Load = load.stop()
	rep.Runs, rep.CPUs, rep.Quick = o.count, runtime.NumCPU(), o.quick
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(stdout)
	return nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a positive size such as 1GiB", s)
	}
	return n * mult, nil
}

// env is what the rows share within one efm-bench run: the options, the
// sandbox and the bare server, started on first use.
type env struct {
	o       options
	log     io.Writer
	sb      *sandbox
	bare    string
	bareCmd *exec.Cmd
	seq     int
}

func (e *env) sandbox() (*sandbox, error) {
	if e.sb != nil && !e.sb.exited() {
		return e.sb, nil
	}
	sb, err := startSandbox(e.o.bin, filepath.Join(e.o.work, "sandbox"))
	if err != nil {
		return nil, err
	}
	e.sb = sb
	return sb, nil
}

func (e *env) bareServer() (string, int, error) {
	if e.bareCmd == nil {
		cmd, url, err := self(roleBare)
		if err != nil {
			return "", 0, err
		}
		e.bareCmd, e.bare = cmd, url
	}
	return e.bare, e.bareCmd.Process.Pid, nil
}

// dir is a new directory under the work dir for one daemon.
func (e *env) dir(name string) string {
	e.seq++
	return filepath.Join(e.o.work, fmt.Sprintf("%02d-%s", e.seq, name))
}

// daemon starts a daemon against the sandbox with extra configuration.
func (e *env) daemon(name string, extra map[string]string) (*daemon, error) {
	sb, err := e.sandbox()
	if err != nil {
		return nil, err
	}
	return startDaemon(e.o.bin, sb, e.dir(name), extra)
}

// windows are the warm-up and measuring time of a closed-loop figure.
func (e *env) windows() (warm, dur time.Duration) {
	if e.o.quick {
		return 200 * time.Millisecond, 700 * time.Millisecond
	}
	return time.Second, 4 * time.Second
}

func (e *env) close() {
	kill(e.bareCmd)
	if e.sb != nil {
		e.sb.stop()
	}
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "efm-bench:   "+format+"\n", args...)
}

// loadWatch samples the 1-minute load average while the run lasts.
type loadWatch struct {
	mu      sync.Mutex
	samples []float64
	done    chan struct{}
}

func loadavg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func startLoadWatch() *loadWatch {
	w := &loadWatch{done: make(chan struct{}), samples: []float64{loadavg()}}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-t.C:
				w.mu.Lock()
				w.samples = append(w.samples, loadavg())
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// Spread is a median with its min and max.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spread(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

func (w *loadWatch) stop() Spread {
	close(w.done)
	w.mu.Lock()
	defer w.mu.Unlock()
	return spread(append(w.samples, loadavg()))
}

// Row is one line of the report: a figure over the runs beside its baseline.
type Row struct {
	Row      string   `json:"row"`
	Name     string   `json:"name"`
	Unit     string   `json:"unit"`
	Value    Spread   `json:"value"`
	BaseName string   `json:"baseline_name"`
	Base     Spread   `json:"baseline"`
	Ratio    Spread   `json:"ratio"`
	Goal     string   `json:"goal,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// Report is everything a run prints.
type Report struct {
	Runs  int    `json:"runs"`
	CPUs  int    `json:"cpus"`
	Quick bool   `json:"quick"`
	Load  Spread `json:"load_average_1m"`
	Rows  []Row  `json:"rows"`
}

func aggregate(runs [][]measure) Report {
	var order []string
	byKey := map[string][]measure{}
	for _, ms := range runs {
		for _, m := range ms {
			k := m.Row + "\x00" + m.Name
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], m)
		}
	}
	var rep Report
	for _, k := range order {
		ms := byKey[k]
		var v, b, r []float64
		var notes []string
		for _, m := range ms {
			v, b = append(v, m.Value), append(b, m.Base)
			if m.Base != 0 {
				r = append(r, m.Value/m.Base)
			}
			if m.Note != "" {
				notes = append(notes, m.Note)
			}
		}
		rep.Rows = append(rep.Rows, Row{Row: ms[0].Row, Name: ms[0].Name, Unit: ms[0].Unit, Value: spread(v),
			BaseName: ms[0].BaseName, Base: spread(b), Ratio: spread(r), Goal: ms[0].Goal, Notes: notes})
	}
	sort.SliceStable(rep.Rows, func(i, j int) bool { return rowNumber(rep.Rows[i].Row) < rowNumber(rep.Rows[j].Row) })
	return rep
}

// rowNumber is the issue table's row of "10a".
func rowNumber(row string) int {
	n, _ := strconv.Atoi(strings.TrimRight(row, "abcdefgh"))
	return n
}

func num(v float64) string {
	switch a := max(v, -v); {
	case a == 0:
		return "0"
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

func (s Spread) String() string {
	if s.Min == s.Max {
		return num(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.Median), num(s.Min), num(s.Max))
}

func (r Report) print(w io.Writer) {
	fmt.Fprintf(w, "efm-bench: %d run(s), %d CPUs, load average (1 min) during the run: %s", r.Runs, r.CPUs, r.Load)
	if r.Quick {
		fmt.Fprint(w, ", -quick (smoke sizes, not figures)")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "medians (min–max); ratio = figure / baseline, per run")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tfigure\tunit\tvalue\tbaseline\tbaseline value\tratio\tgoal")
	for _, row := range r.Rows {
		ratio := "-"
		if row.Ratio != (Spread{}) {
			ratio = row.Ratio.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Row, row.Name, row.Unit, row.Value, row.BaseName, row.Base, ratio, row.Goal)
	}
	tw.Flush()
	for _, row := range r.Rows {
		if len(row.Notes) > 0 {
			fmt.Fprintf(w, "row %s %s: %s\n", row.Row, row.Name, strings.Join(slices.Compact(row.Notes), "; "))
		}
	}
}
