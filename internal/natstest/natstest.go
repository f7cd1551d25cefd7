// Package natstest runs a JetStream cluster on loopback for tests: n
// nats-server nodes joined by cluster routes on free ports, each with its
// own store directory, each stoppable and restartable on the same ports and
// directory (a node coming back). Start embeds the nodes in the test
// process; StartProcesses runs each as a nats-server process of its own, so
// a test can SIGKILL one.
package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a running JetStream cluster.
type Cluster struct {
	Nodes []*Node
}

// Node is one server of the cluster.
type Node struct {
	opts *server.Options
	srv  *server.Server
	bin  string    // process mode: the nats-server binary
	cmd  *exec.Cmd // process mode: the running process
	done chan struct{}
}

// Start starts an n-node cluster under dir and waits until JetStream has a
// meta leader. Stop it with Shutdown.
func Start(t testing.TB, dir string, n int) *Cluster {
	t.Helper()
	return start(t, dir, n, "")
}

// StartProcesses is Start with every node a process of the nats-server
// binary bin (Binary builds it).
func StartProcesses(t testing.TB, bin, dir string, n int) *Cluster {
	t.Helper()
	return start(t, dir, n, bin)
}

func start(t testing.TB, dir string, n int, bin string) *Cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	c := &Cluster{}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "efm",
				Host: "127.0.0.1",
				Port: ports[n+i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}
		c.Nodes = append(c.Nodes, &Node{opts: o, bin: bin})
	}
	for _, nd := range c.Nodes {
		if err := nd.Start(); err != nil {
			c.Shutdown()
			t.Fatal(err)
		}
	}
	if bin != "" {
		if err := c.waitJetStream(90 * time.Second); err != nil {
			c.Shutdown()
			t.Fatal(err)
		}
		return c
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.hasMetaLeader() {
		if time.Now().After(deadline) {
			c.Shutdown()
			t.Fatal("the JetStream cluster elected no meta leader within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

func (c *Cluster) hasMetaLeader() bool {
	for _, nd := range c.Nodes {
		if nd.srv != nil && nd.srv.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// waitJetStream waits until the cluster answers JetStream requests: it has
// elected its meta leader.
func (c *Cluster) waitJetStream(within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		nc, err := nats.Connect(strings.Join(c.URLs(), ","))
		if err == nil {
			var js jetstream.JetStream
			if js, err = jetstream.New(nc); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err = js.AccountInfo(ctx)
				cancel()
			}
			nc.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the JetStream cluster did not answer within %s: %v", within, last)
}

// Binary builds the nats-server of the module graph (the version the daemon
// embeds) into dir and returns its path.
func Binary(dir string) (string, error) {
	bin := filepath.Join(dir, "nats-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build nats-server: %v\n%s", err, out)
	}
	return bin, nil
}

// URLs are the client URLs of every node.
func (c *Cluster) URLs() []string {
	var out []string
	for _, nd := range c.Nodes {
		out = append(out, nd.URL())
	}
	return out
}

// Shutdown stops every running node.
func (c *Cluster) Shutdown() {
	for _, nd := range c.Nodes {
		nd.Stop()
	}
}

// URL is the node's client URL.
func (nd *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", nd.opts.Port) }

// Start starts (or restarts) the node on its ports and store directory.
func (nd *Node) Start() error {
	if nd.bin != "" {
		return nd.startProcess()
	}
	o := *nd.opts
	s, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("configuring nats node %s: %w", o.ServerName, err)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("nats node %s did not start", o.ServerName)
	}
	nd.srv = s
	return nil
}

func (nd *Node) startProcess() error {
	o := nd.opts
	var routes []string
	for _, r := range o.Routes {
		routes = append(routes, r.String())
	}
	cmd := exec.Command(nd.bin, "-n", o.ServerName, "-a", o.Host, "-p", strconv.Itoa(o.Port), "-js", "-sd", o.StoreDir,
		"--cluster_name", o.Cluster.Name, "--cluster", fmt.Sprintf("nats://%s:%d", o.Cluster.Host, o.Cluster.Port),
		"--routes", strings.Join(routes, ","))
	if err := os.MkdirAll(o.StoreDir, 0o750); err != nil {
		return err
	}
	logf, err := os.OpenFile(o.StoreDir+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting nats node %s: %w", o.ServerName, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	nd.cmd, nd.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", net.JoinHostPort(o.Host, strconv.Itoa(o.Port))); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nats node %s did not listen within 30s", o.ServerName)
}

// Kill ends a process node with SIGKILL: no flush, no goodbye to its peers.
func (nd *Node) Kill() {
	if nd.cmd != nil {
		_ = nd.cmd.Process.Kill()
		<-nd.done
		nd.cmd = nil
	}
}

// Stop stops the node, if running.
func (nd *Node) Stop() {
	if nd.cmd != nil {
		_ = nd.cmd.Process.Signal(os.Interrupt)
		select {
		case <-nd.done:
		case <-time.After(10 * time.Second):
		}
		nd.Kill()
		return
	}
	if nd.srv != nil {
		nd.srv.Shutdown()
		nd.srv.WaitForShutdown()
		nd.srv = nil
	}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
