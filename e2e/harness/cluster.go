package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cluster is three (or more) standalone nats-server processes joined by
// cluster routes on loopback, each with JetStream and a file store of its
// own: the smallest cluster that holds R3 streams and survives losing one
// server.
type Cluster struct {
	Nodes []*NATS
	// health is each node's full /healthz (JetStream meta leader known,
	// its streams and consumers current), as opposed to Start's readiness
	// (JetStream enabled), which a node reaches before it has caught up.
	health []string
}

// StartCluster starts n servers named <name>-0..<name>-<n-1>, routed to each
// other, and waits until every one reports healthy (meta leader elected).
// Ports are fixed for the run, so a restarted node keeps its URL and routes.
func (e *Env) StartCluster(name string, n int) *Cluster {
	e.t.Helper()
	if n < 3 {
		e.t.Fatalf("cluster %s: %d nodes; JetStream replication needs at least 3", name, n)
	}
	type ports struct{ client, http, route int }
	ps := make([]ports, n)
	routes := make([]string, n)
	for i := range ps {
		p := e.Ports(3)
		ps[i] = ports{p[0], p[1], p[2]}
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", p[2])
	}
	c := &Cluster{}
	for i := range n {
		node := fmt.Sprintf("%s-%d", name, i)
		spec := Spec{
			Name: node,
			Path: e.Bin.NATSServer,
			Args: []string{
				"--jetstream", "--store_dir", e.Path(node, "store"),
				"--addr", "127.0.0.1", "--port", strconv.Itoa(ps[i].client),
				"--http_port", strconv.Itoa(ps[i].http),
				"--server_name", node,
				"--cluster_name", name,
				"--cluster", routes[i],
				// Every route, its own included (the server skips it): each
				// node finds the others whichever comes up first.
				"--routes", strings.Join(routes, ","),
			},
			Dir:      e.Path(node),
			ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", ps[i].http),
		}
		c.Nodes = append(c.Nodes, &NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", ps[i].client), spec: spec, env: e})
		c.health = append(c.health, fmt.Sprintf("http://127.0.0.1:%d/healthz", ps[i].http))
	}
	// All started before any is awaited: a node's JetStream waits for its
	// peers to elect a meta leader.
	for _, node := range c.Nodes {
		spec := node.spec
		spec.ReadyURL = ""
		node.Proc = e.Start(spec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range c.Nodes {
		if err := c.WaitHealthy(ctx, i); err != nil {
			e.t.Fatalf("cluster %s: %v", name, err)
		}
	}
	return c
}

// URL is every node's client URL, comma-separated: what a client is given
// so it can fail over to any of them.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}

// WaitHealthy waits until node i's full /healthz answers 200: JetStream is
// up, it knows the meta leader and its replicas are current.
func (c *Cluster) WaitHealthy(ctx context.Context, i int) error {
	return c.Nodes[i].Proc.WaitReady(ctx, c.health[i])
}
