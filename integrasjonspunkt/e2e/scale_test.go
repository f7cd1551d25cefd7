package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/queue"
	"github.com/efm-go/efm/internal/natstest"
	"github.com/efm-go/efm/internal/pgtest"
)

// group is several daemons of one organisation on one PostgreSQL database
// and one 3-node JetStream cluster, as README "When one machine is not
// enough" sets them up.
type group struct {
	pg      *pgtest.Server
	nats    *natstest.Cluster
	daemons []*child
}

func startGroup(t testing.TB, daemons int, extra map[string]string) *group {
	t.Helper()
	pgtest.Need(t)
	pg, err := pgtest.Start(pgtest.Options{})
	require.NoError(t, err)
	t.Cleanup(pg.Stop)
	bin, err := natstest.Binary(t.TempDir())
	require.NoError(t, err)
	nc := natstest.StartProcesses(t, bin, t.TempDir(), 3)
	t.Cleanup(nc.Shutdown)
	g := &group{pg: pg, nats: nc}
	db, shared := pg.CreateDB(t), t.TempDir()
	t.Setenv("EFM_TEST_DB_PASSWORD", "not-checked-by-trust-auth")
	// The first daemon starts alone: it migrates the database and makes the
	// shared keys the others then read.
	for i := range daemons {
		ov := map[string]string{
			"spring.datasource.url":       pg.JDBC(db),
			"spring.datasource.username":  pgtest.Superuser,
			"spring.datasource.password":  "${env:EFM_TEST_DB_PASSWORD}",
			"efm.queue.url":               strings.Join(nc.URLs(), ","),
			"efm.queue.replicas":          "3",
			"efm.shared.dir":              shared,
			"efm.node.name":               fmt.Sprint("d", i),
			"difi.move.queue.concurrency": "8",
			"efm.pipeline.sweep-interval": "2s",
			"efm.pipeline.sweep-grace":    "10s",
			"efm.log.level":               "info",
		}
		for k, v := range extra {
			ov[k] = v
		}
		g.daemons = append(g.daemons, startChild(t, t.TempDir(), ov))
	}
	return g
}

// requireAlive fails, with the end of its log, for a daemon that exited by
// itself.
func (g *group) requireAlive(t testing.TB) {
	t.Helper()
	for i, d := range g.daemons {
		// An exited child nobody waited for yet is a zombie: still there
		// for kill(0), state Z in /proc.
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
		_, after, _ := strings.Cut(string(stat), ") ")
		if d.cmd.Process.Signal(syscall.Signal(0)) != nil || strings.HasPrefix(after, "Z") {
			b, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Fatalf("daemon d%d exited by itself; its log ends:\n%s", i, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	}
}

// leaseHolder reads who holds a lease from the cluster's lease bucket.
func (g *group) leaseHolder(t testing.TB, name string) string {
	t.Helper()
	nc, err := nats.Connect(strings.Join(g.nats.URLs(), ","))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "efm_leases")
	if err != nil {
		return ""
	}
	e, err := kv.Get(ctx, name)
	if err != nil {
		return ""
	}
	return string(e.Value())
}

// TestGroup_KillADaemonAndANATSNode: three daemons on one PostgreSQL and a
// 3-node JetStream cluster take load from several clients. Mid-run the
// daemon running the DPO receipt poller and one NATS node are SIGKILLed;
// the others go on, the poller moves to another daemon within its lease,
// and both come back. Every message the API accepted is published by the
// broker exactly once and reaches LEVERT (no receipt lost); a message whose
// answer the kill cut off is published at most once.
func TestGroup_KillADaemonAndANATSNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, three NATS nodes and three daemons")
	}
	const n = 300
	g := startGroup(t, 3, nil)
	before := brokerDeliveries(t)

	results := make(chan sendResult, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var sent sync.WaitGroup
	send := func(ds []*child, stop <-chan struct{}) {
		for c := range 6 {
			d := ds[c%len(ds)]
			sent.Go(func() {
				for range next {
					select {
					case <-stop:
						return
					default:
					}
					sbd, files, id := arkivmelding(peerOrg, 0)
					code, _ := d.send(sbd, files)
					results <- sendResult{id, code == http.StatusOK}
				}
			})
		}
	}
	published := func() int {
		k := 0
		for id, c := range brokerDeliveries(t) {
			k += c - before[id]
		}
		return k
	}
	waitPublished := func(want int) {
		deadline := time.Now().Add(3 * time.Minute)
		for published() < want && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}

	stop := make(chan struct{})
	send(g.daemons, stop)
	waitPublished(n / 5)
	poller := g.leaseHolder(t, "fetch-DPO")
	require.NotEmpty(t, poller, "a daemon runs the DPO poller")
	var victim int
	fmt.Sscanf(poller, "d%d", &victim)
	close(stop)
	g.daemons[victim].kill(t)
	g.nats.Nodes[1].Kill()
	killed := time.Now()
	sent.Wait()
	t.Logf("killed %s (the DPO poller) and NATS node n2 after %d published", poller, published())

	var others []*child
	for i, d := range g.daemons {
		if i != victim {
			others = append(others, d)
		}
	}
	stop = make(chan struct{})
	send(others, stop)
	var moved time.Duration
	for time.Since(killed) < 4*queue.LeaseTTL {
		if h := g.leaseHolder(t, "fetch-DPO"); h != "" && h != poller {
			moved = time.Since(killed)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NotZero(t, moved, "the DPO poller moved to another daemon")
	t.Logf("the DPO poller moved after %s (lease TTL %s)", moved.Round(100*time.Millisecond), queue.LeaseTTL)
	waitPublished(2 * n / 3)
	close(stop)
	sent.Wait()

	require.NoError(t, g.nats.Nodes[1].Start())
	g.daemons[victim] = g.daemons[victim].restart(t)
	send(g.daemons, nil)
	sent.Wait()
	close(results)

	accepted, unsure := splitResults(results)
	t.Logf("%d accepted, %d cut off by the kill", len(accepted), len(unsure))
	require.GreaterOrEqual(t, len(accepted), n-30, "most sends are answered")

	g.requireAlive(t)
	requireExactlyOnce(t, accepted, unsure, func(id string) string {
		var logs []string
		for _, d := range g.daemons {
			logs = append(logs, d.logOf(id))
		}
		return strings.Join(logs, "\n")
	})
	// Receipts: every accepted message reaches LEVERT, read through any
	// daemon (they share the store).
	deadline := time.Now().Add(2 * time.Minute)
	pending := accepted
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []string
		for i, id := range pending {
			if !slices.Contains(g.daemons[i%len(g.daemons)].statuses(id), "LEVERT") {
				still = append(still, id)
			}
		}
		pending = still
		time.Sleep(200 * time.Millisecond)
	}
	if len(pending) == 0 {
		return
	}
	var rep struct {
		PeerErrors map[string]string `json:"peerErrors"`
	}
	simCall(t, "altinn-broker", "GET", "/_sim/deliveries", nil, &rep)
	for _, id := range pending {
		t.Errorf("message %s did not reach LEVERT: statuses %v; the peer says %q", id, g.daemons[0].statuses(id), rep.PeerErrors[id])
	}
	for i, d := range g.daemons {
		b, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"WARN"`) || strings.Contains(line, `"ERROR"`) {
				t.Logf("d%d: %s", i, line)
			}
		}
	}
}

// requireExactlyOnce waits until the broker has published every accepted
// message and fails for any published other than once, or any message whose
// answer was cut off published more than once. why tells what the daemons
// said about a message.
func requireExactlyOnce(t *testing.T, accepted, unsure []string, why func(id string) string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var dl map[string]int
	for time.Now().Before(deadline) {
		dl = brokerDeliveries(t)
		missing := 0
		for _, id := range accepted {
			if dl[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, id := range accepted {
		if dl[id] != 1 {
			t.Errorf("accepted message %s published %d times; the daemon says:\n%s", id, dl[id], why(id))
		}
	}
	for _, id := range unsure {
		require.LessOrEqual(t, dl[id], 1, "message %s published at most once", id)
	}
}

// sendResult is one client send: the message id and whether the API
// answered 200.
type sendResult struct {
	id       string
	accepted bool
}

// splitResults drains results into the accepted ids and those whose answer
// a kill cut off.
func splitResults(results <-chan sendResult) (accepted, unsure []string) {
	for r := range results {
		if r.accepted {
			accepted = append(accepted, r.id)
		} else {
			unsure = append(unsure, r.id)
		}
	}
	return accepted, unsure
}
