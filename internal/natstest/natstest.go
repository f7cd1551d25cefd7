// Package natstest runs a JetStream cluster on loopback for tests: n
// embedded nats-server nodes joined by cluster routes on free ports, each
// with its own store directory, each stoppable and restartable on the same
// ports and directory (a node coming back).
package natstest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a running JetStream cluster.
type Cluster struct {
	Nodes []*Node
}

// Node is one server of the cluster.
type Node struct {
	opts *server.Options
	srv  *server.Server
}

// Start starts an n-node cluster under dir and waits until JetStream has a
// meta leader. Stop it with Shutdown.
func Start(t testing.TB, dir string, n int) *Cluster {
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
		c.Nodes = append(c.Nodes, &Node{opts: o})
	}
	for _, nd := range c.Nodes {
		if err := nd.Start(); err != nil {
			c.Shutdown()
			t.Fatal(err)
		}
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

// Stop stops the node, if running.
func (nd *Node) Stop() {
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
