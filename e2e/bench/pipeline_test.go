package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// sinkNames are the sink processes, one sink each, so that each has its
// own consumer, CPU and RSS.
var sinkNames = []string{"file", "clickhouse", "elasticsearch"}

// rawSources are the raw streams the mix goes to.
var rawSources = []string{topology.SourceK8sAudit, topology.SourceTetragon, topology.SourceFalco}

// pipeline is the deployment under test: a standalone nats-server and one
// process per stage, each with its own config, data dir and telemetry port.
type pipeline struct {
	env      *harness.Env
	nats     *harness.NATS
	nc       *nats.Conn
	js       jetstream.JetStream
	topology string
	procs    map[string]*harness.Proc // by stage: collector, processor, sink-<name>
	order    []string                 // stages in start order, nats-server first

	auditPath, tetragonPath, falcoURL string
	sinkDir                           string
	chURL, esURL, db, ns              string
	rulesDirs                         []string
}

// The events stream holds every event of the run (a few hundred thousand of
// ~3 KB): raise its byte cap so that nothing a slow sink has not read is
// discarded as old, and the raw streams' so a backlog never refuses
// publishes.
const benchTopology = `topology:
  raw:
    max_bytes: 2GiB
  events:
    max_bytes: 8GiB
`

func (p *pipeline) connect() error {
	nc, js, err := harness.Connect(p.nats.URL)
	if err != nil {
		return err
	}
	p.nc, p.js = nc, js
	return nil
}

func (p *pipeline) start(stage, path, body string) {
	port := p.env.Ports(1)[0]
	cfg := fmt.Sprintf("log:\n  level: warn\ntelemetry:\n  listen: 127.0.0.1:%d\nnats:\n  url: %s\n%s%s", port, p.nats.URL, p.topology, body)
	cfgPath := p.env.WriteFile(stage+"/config.yaml", cfg)
	proc := p.env.Start(harness.Spec{
		Name: stage, Path: path, Args: []string{"-config", cfgPath},
		Dir: p.env.Path(stage), ReadyURL: harness.ReadyURL(port),
	})
	p.procs[stage] = proc
	p.order = append(p.order, stage)
}

func (p *pipeline) startCollector(falcoPort int) {
	p.start("collector", p.env.Bin.Collector, fmt.Sprintf(`data_dir: %s
collectors:
  publish:
    collector_id: bench
    node: bench
  replay:
    enabled: false
  k8s_audit_file:
    enabled: true
    paths: [%q]
  json_lines:
    enabled: true
    source: tetragon
    files:
      paths: [%q]
  falco_http:
    enabled: true
    listen: 127.0.0.1:%d
    allow_insecure_loopback: true
`, p.env.Path("collector", "data"), p.auditPath, p.tetragonPath, falcoPort))
}

func (p *pipeline) startProcessor() {
	dirs := ""
	if len(p.rulesDirs) > 0 {
		q := make([]string, len(p.rulesDirs))
		for i, d := range p.rulesDirs {
			q[i] = fmt.Sprintf("%q", d)
		}
		dirs = fmt.Sprintf("processor:\n  detect:\n    rules_dirs: [%s]\n", strings.Join(q, ", "))
	}
	p.start("processor", p.env.Bin.Processor, dirs)
}

func (p *pipeline) startSink(name string) {
	body := fmt.Sprintf("data_dir: %s\nsinks:\n  terminal:\n    enabled: false\n  file:\n    enabled: %v\n", p.env.Path("sink-"+name, "data"), name == "file")
	switch name {
	case "clickhouse":
		body += fmt.Sprintf("  clickhouse:\n    enabled: true\n    url: %s\n    database: %s\n", p.chURL, p.db)
	case "elasticsearch":
		body += fmt.Sprintf("  elasticsearch:\n    enabled: true\n    addresses: [%q]\n    namespace: %s\n", p.esURL, p.ns)
	}
	p.start("sink-"+name, p.env.Bin.Sink, body)
}

// backlog is what each stage has been handed and not yet passed on.
type backlog struct {
	collector int64            // generated, not yet in a raw stream
	processor int64            // in the raw streams (work queues: not yet acked by the processor)
	sinks     map[string]int64 // per sink: events and alerts pending or unacked on its consumers
	rawTotal  int64            // records ever stored in the raw streams
	events    int64            // events ever stored in the events stream
	alerts    int64            // alerts ever stored in the alerts stream
}

func (b backlog) total() int64 {
	t := b.collector + b.processor
	for _, v := range b.sinks {
		t += v
	}
	return t
}

// read samples every stage's backlog; generated is what the feeder has
// handed over so far, sinks the sinks running.
func (p *pipeline) read(ctx context.Context, generated int64, sinks []string) (backlog, error) {
	b := backlog{sinks: map[string]int64{}}
	for _, src := range rawSources {
		name, err := topology.RawStream(src)
		if err != nil {
			return b, err
		}
		s, err := p.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return b, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return b, fmt.Errorf("stream %s: %w", name, err)
		}
		b.rawTotal += int64(info.State.LastSeq)
		b.processor += int64(info.State.Msgs)
	}
	b.collector = generated - b.rawTotal
	ev, err := p.js.Stream(ctx, topology.EventsStream)
	if err == nil {
		info, err := ev.Info(ctx)
		if err != nil {
			return b, fmt.Errorf("stream %s: %w", topology.EventsStream, err)
		}
		b.events = int64(info.State.LastSeq)
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return b, fmt.Errorf("stream %s: %w", topology.EventsStream, err)
	}
	al, err := p.js.Stream(ctx, topology.AlertsStream)
	if err == nil {
		info, err := al.Info(ctx)
		if err != nil {
			return b, fmt.Errorf("stream %s: %w", topology.AlertsStream, err)
		}
		b.alerts = int64(info.State.LastSeq)
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return b, fmt.Errorf("stream %s: %w", topology.AlertsStream, err)
	}
	for _, name := range sinks {
		durable, err := topology.SinkConsumerName(name)
		if err != nil {
			return b, err
		}
		for _, stream := range []string{topology.EventsStream, topology.AlertsStream} {
			c, err := p.js.Consumer(ctx, stream, durable)
			if err != nil {
				return b, fmt.Errorf("consumer %s on %s: %w", durable, stream, err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				return b, fmt.Errorf("consumer %s on %s: %w", durable, stream, err)
			}
			b.sinks[name] += int64(info.NumPending) + int64(info.NumAckPending)
		}
	}
	return b, nil
}

// waitFor polls read every interval until done says so or timeout passes,
// and returns the last sample and when it came.
func (p *pipeline) waitFor(ctx context.Context, f *Feeder, sinks []string, interval, timeout time.Duration, done func(backlog) bool) (backlog, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := p.read(ctx, f.Generated.Load(), sinks)
		now := time.Now()
		if err == nil && done(b) {
			return b, now, nil
		}
		if now.After(deadline) {
			if err == nil {
				err = fmt.Errorf("not done after %s: backlog collector %d, processor %d, sinks %v", timeout, b.collector, b.processor, b.sinks)
			}
			return b, now, err
		}
		select {
		case <-ctx.Done():
			return b, now, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// usage reads every stage process's CPU and RSS.
func (p *pipeline) usage() (map[string]harness.ProcUsage, error) {
	out := map[string]harness.ProcUsage{}
	procs := map[string]*harness.Proc{"nats-server": p.nats.Proc}
	for k, v := range p.procs {
		procs[k] = v
	}
	for name, proc := range procs {
		if exited, err := proc.Exited(); exited {
			return nil, fmt.Errorf("%s exited (%v); see %s", name, err, proc.LogPath())
		}
		u, err := harness.ReadProcUsage(proc.Pid())
		if err != nil {
			return nil, err
		}
		out[name] = u
	}
	return out, nil
}

// stageNames lists the processes in pipeline order.
func (p *pipeline) stageNames() []string {
	return slices.Concat([]string{"nats-server"}, p.order)
}
