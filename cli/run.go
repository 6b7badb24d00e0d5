package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/agent"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

type runFlags struct {
	configPath      string
	dataDir         string
	forDuration     time.Duration
	drainTimeout    time.Duration
	k8sAuditFiles   []string
	k8sAuditWebhook string
	falcoHTTP       string
	clickhouse      string
	elasticsearch   string
	natsURL         string
}

func newRunCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the whole pipeline in one process: collectors, processor and sinks",
		Long: "Starts an embedded NATS JetStream server (unless --nats points at one), the collectors\n" +
			"(the bundled sample replay when no source is given), the processor and the sinks\n" +
			"(JSONL files under the data dir and a live terminal view; ClickHouse and Elasticsearch\n" +
			"when given). Ctrl-C drains and exits; a restart on the same data dir resumes without\n" +
			"loss or duplicates.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, applied, err := loadConfig(configPathFromEnv(f.configPath))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if err := f.apply(cmd, &cfg); err != nil {
				return &exitError{code: 2, err: err}
			}
			cfg.resolve()
			if err := cfg.Validate(); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("invalid configuration:\n%w", err)}
			}
			logger := telemetry.NewLogger(cfg.Log, cmd.ErrOrStderr())
			for _, o := range applied {
				logger.Debug("environment override", "var", o.Var, "path", o.Path)
			}
			ctx := cmd.Context()
			if f.forDuration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, f.forDuration)
				defer cancel()
			}
			return runAllInOne(ctx, cfg, f.drainTimeout, logger, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "configuration file (default: $CROWSNEST_CONFIG, else built-in defaults)")
	fl.StringVar(&f.dataDir, "data-dir", "", "where state lives: the embedded JetStream store, checkpoints, the file sink (default .data)")
	fl.DurationVar(&f.forDuration, "for", 0, "run for this long, then drain and exit 0 (e.g. 20s); 0 runs until Ctrl-C")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on shutdown, how long to wait for in-flight events to reach the sinks")
	fl.StringArrayVar(&f.k8sAuditFiles, "k8s-audit-file", nil, "tail a Kubernetes audit log (JSON lines); repeatable")
	fl.StringVar(&f.k8sAuditWebhook, "k8s-audit-webhook", "", "serve the Kubernetes audit webhook backend on ADDR: host:port (TLS and client auth from the config's collectors.k8s_audit_webhook), or http://127.0.0.1:PORT[/path] for plain HTTP on loopback")
	fl.StringVar(&f.falcoHTTP, "falco-http", "", "receive Falco http_output and falcosidekick alerts on ADDR: host:port (TLS from the config's collectors.falco_http), or http://127.0.0.1:PORT for plain HTTP on loopback")
	fl.StringVar(&f.clickhouse, "clickhouse", "", "write events and alerts to ClickHouse at URL")
	fl.StringVar(&f.elasticsearch, "elasticsearch", "", "write events and alerts to Elasticsearch at URL")
	fl.StringVar(&f.natsURL, "nats", "", "use this NATS server instead of the embedded one")
	return cmd
}

// apply lays the flags over the file and environment: flags win.
func (f *runFlags) apply(cmd *cobra.Command, cfg *Config) error {
	for _, fl := range []struct{ name, value string }{{"nats", f.natsURL}, {"clickhouse", f.clickhouse}, {"elasticsearch", f.elasticsearch}} {
		if err := noCredentialsInArgument(fl.name, fl.value); err != nil {
			return err
		}
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	if f.natsURL != "" {
		cfg.Embedded.Enabled = false
		cfg.NATS.URL = f.natsURL
	}
	if len(f.k8sAuditFiles) > 0 || f.k8sAuditWebhook != "" || f.falcoHTTP != "" {
		// Real sources replace the sample replay unless the config asks for both.
		if !cmd.Flags().Changed("config") {
			cfg.Collectors.Replay.Enabled = false
		}
	}
	if err := cfg.Collectors.ApplySourceFlags(f.k8sAuditFiles, f.k8sAuditWebhook, f.falcoHTTP); err != nil {
		return err
	}
	if f.clickhouse != "" {
		ch := &cfg.Sinks.ClickHouse
		ch.Enabled, ch.Sink.URL, ch.Sink.Addr = true, f.clickhouse, nil
	}
	if f.elasticsearch != "" {
		es := &cfg.Sinks.Elasticsearch
		es.Enabled, es.Sink.Addresses = true, []string{f.elasticsearch}
	}
	return nil
}

// runStage is one long-running part of the all-in-one.
type runStage struct {
	name   string
	cancel context.CancelFunc
	done   chan error
}

func startStage(name string, run func(context.Context) error, failed chan<- string) *runStage {
	ctx, cancel := context.WithCancel(context.Background())
	s := &runStage{name: name, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx)
		if err != nil && ctx.Err() == nil {
			select {
			case failed <- name:
			default:
			}
		}
		s.done <- err
	}()
	return s
}

func (s *runStage) stop() error {
	s.cancel()
	return <-s.done
}

func runAllInOne(ctx context.Context, cfg Config, drainTimeout time.Duration, logger *slog.Logger, stdout io.Writer) (err error) {
	reg := telemetry.NewRegistry()
	metrics, err := telemetry.NewComponentMetrics(reg)
	if err != nil {
		return err
	}
	tel := telemetry.New(cfg.Telemetry, reg, logger)
	if cfg.Telemetry.Listen != "" {
		if err := tel.Start(ctx); err != nil {
			return fmt.Errorf("telemetry server: %w (set telemetry.listen, or CROWSNEST_TELEMETRY__LISTEN=127.0.0.1:0)", err)
		}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()

	natsCfg := cfg.NATS
	var authDir string
	if !cfg.Embedded.Enabled && cfg.Embedded.AuthDir != "" {
		// Said, not silently dropped: the stages use nats.* credentials here.
		logger.Warn("embedded.auth_dir is ignored: the embedded server is off, every stage connects with the nats section's credentials", "auth_dir", cfg.Embedded.AuthDir)
	}
	if cfg.Embedded.Enabled {
		if err := os.MkdirAll(cfg.Embedded.DataDir, 0o750); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		ecfg := cfg.Embedded.Config
		if cfg.Embedded.AuthDir != "" {
			users, err := embeddedUsers(cfg)
			if err != nil {
				return err
			}
			ecfg.NKeyUsers = authz.NkeyUsers(users)
			authDir = cfg.Embedded.AuthDir
		}
		srv, err := embedded.Start(ctx, ecfg, logger)
		if err != nil {
			return fmt.Errorf("embedded NATS server: %w", err)
		}
		defer srv.Shutdown()
		natsCfg.URL = srv.ClientURL()
		logger.Info("embedded JetStream started", "url", natsCfg.URL, "store", cfg.Embedded.DataDir,
			"auth", authDir != "", "tls", ecfg.TLS.Enabled(), "client_certificates", ecfg.TLS.Verify)
	}
	conns, err := connectStages(ctx, natsCfg, allInOneIdentities(cfg), authDir, logger)
	if err != nil {
		return err
	}
	defer conns.close()
	js := conns.admin.js
	tel.RegisterReadiness("nats", func(context.Context) error { return conns.connected() })
	if cfg.EnsureTopology {
		if err := topology.Ensure(ctx, js, cfg.Topology, topology.WithLogger(logger)); err != nil {
			return err
		}
	} else if err := topology.Verify(ctx, js, cfg.Topology, allInOneStreams()); err != nil {
		return fmt.Errorf("verify topology (ensure_topology: false): %w", err)
	}

	// Build every stage before starting any, so a bad setting fails fast.
	norm, err := newNormalizer(cfg.Processor.Normalize)
	if err != nil {
		return err
	}
	proc, err := pipeline.New(conns.processor.js, norm, deadletter.NewPublisher(conns.processor.js), cfg.Processor, pipeline.Settings{
		Logger:     logger,
		Metrics:    metrics.Component(telemetry.KindProcessor, "processor"),
		Consumer:   cfg.Topology.Consumers.Processor,
		Partitions: cfg.Topology.Partitions,
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	runners, err := buildSinks(ctx, conns, cfg, logger, reg)
	if err != nil {
		return err
	}
	coll, err := agent.New(conns.collectors.nc, cfg.Collectors, agent.Settings{Logger: logger, Metrics: metrics, Registry: reg, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}

	failed := make(chan string, 1)
	var sinkStages []*runStage
	for _, r := range runners {
		sinkStages = append(sinkStages, startStage("sink "+r.name, r.runner.Run, failed))
	}
	procStage := startStage("processor", proc.Run, failed)
	collStage := startStage("collectors", coll.Run, failed)
	logger.Info("crowsnest running", "data_dir", cfg.DataDir, "sinks", len(runners))

	select {
	case <-ctx.Done():
		logger.Info("shutting down: draining the pipeline", "reason", context.Cause(ctx))
	case name := <-failed:
		logger.Error("stage failed; shutting down", "stage", name)
		err = fmt.Errorf("%s failed", name)
	}

	// Stop in the direction the data flows, letting each stage empty its
	// input before the next one stops, so what was collected is stored.
	errs := []error{err}
	errs = append(errs, collStage.stop())
	deadline := time.Now().Add(drainTimeout)
	waitIdle(js, topology.ProcessorConsumers(cfg.Topology.Partitions, cfg.Topology.Consumers.Processor), deadline, logger)
	errs = append(errs, procStage.stop())
	var sinkDecls []topology.ConsumerDecl
	for _, r := range runners {
		d, _ := topology.SinkConsumers(r.name, cfg.Topology.Consumers.Sink)
		sinkDecls = append(sinkDecls, d...)
	}
	waitIdle(js, sinkDecls, deadline, logger)
	for _, s := range sinkStages {
		errs = append(errs, s.stop())
	}
	conns.drain(logger)
	logger.Info("crowsnest stopped")
	return errors.Join(errs...)
}

// waitIdle waits until no consumer in decls has messages pending or
// unacknowledged, until the count stops falling for stallAfter (messages
// delivered to an earlier, killed process wait for their ack timeout), or
// until deadline. Whatever is left stays in JetStream and is picked up by the
// next run: nothing is lost, only not yet delivered.
func waitIdle(js jetstream.JetStream, decls []topology.ConsumerDecl, deadline time.Time, logger *slog.Logger) {
	const stallAfter = 5 * time.Second
	best, bestAt := uint64(1<<63), time.Now()
	for {
		var left uint64
		for _, d := range decls {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			c, err := js.Consumer(ctx, d.Stream, d.Config.Durable)
			if err == nil {
				var info *jetstream.ConsumerInfo
				if info, err = c.Info(ctx); err == nil {
					left += info.NumPending + uint64(info.NumAckPending)
				}
			}
			cancel()
		}
		if left == 0 {
			return
		}
		if left < best {
			best, bestAt = left, time.Now()
		}
		if time.Since(bestAt) > stallAfter || time.Now().After(deadline) {
			logger.Warn("stopping with messages still in JetStream; the next run delivers them", "messages", left)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type namedRunner struct {
	name   string
	runner *sink.Runner
}

func buildSinks(ctx context.Context, conns *stageConns, cfg Config, logger *slog.Logger, reg prometheus.Registerer) ([]namedRunner, error) {
	var out []namedRunner
	for _, c := range cfg.Sinks.Configured() {
		set := sink.Settings{Logger: logger.With("sink", c.Name), Metrics: reg, DataDir: cfg.DataDir, Consumer: cfg.Topology.Consumers.Sink}
		s, err := c.Factory.Create(ctx, c.Config, set)
		if err != nil {
			return nil, err
		}
		r, err := sink.New(conns.sinks[c.Name].js, c.Name, s, c.Runner, set)
		if err != nil {
			return nil, fmt.Errorf("sink %s: %w", c.Name, err)
		}
		out = append(out, namedRunner{name: c.Name, runner: r})
	}
	return out, nil
}

func newNormalizer(cfg normalize.Config) (*normalize.Normalizer, error) {
	reg, err := sources.NewRegistry(cfg)
	if err != nil {
		return nil, err
	}
	return normalize.New(cfg, reg)
}

// noCredentialsInArgument refuses a URL flag carrying a password or token
// (user:password@, or a password/token query parameter): process arguments
// are readable by every user of the machine (ps, /proc/<pid>/cmdline). The
// error does not repeat the value.
func noCredentialsInArgument(flag, value string) error {
	for _, raw := range strings.Split(value, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if !strings.Contains(raw, "://") {
			raw = "scheme://" + raw
		}
		u, err := url.Parse(raw)
		hasCreds := err != nil && strings.Contains(raw, "@") // unparsable: judge by the shape
		if err == nil {
			q := u.Query()
			hasCreds = u.User != nil || q.Has("password") || q.Has("token") || q.Has("api_key")
		}
		if hasCreds {
			return fmt.Errorf("--%s: credentials in a command-line argument are visible to every user of this machine (ps, /proc/<pid>/cmdline): pass the URL without them and give the credentials through the config file or the CROWSNEST_* environment (nats.nkey_file or creds_file for NATS; the sink's own password setting for a store)", flag)
		}
	}
	return nil
}

// allInOneStreams are the streams the all-in-one's processor and sinks use.
func allInOneStreams() []string {
	names := slices.Concat(topology.ProcessorStreams(), topology.SinkStreams())
	slices.Sort(names)
	return slices.Compact(names)
}
