package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/stage"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
)

// newNATSSetupCommand creates the topology as the admin identity: the one
// place in a least-privilege deployment that manages streams.
func newNATSSetupCommand() *cobra.Command {
	var (
		configPath string
		check      bool
	)
	cmd := &cobra.Command{
		Use:   "nats-setup",
		Short: "Create or update the NATS streams, consumers and buckets (as the admin identity)",
		Long: "Connects to nats.url with the config's credentials, which must be the admin identity's\n" +
			"(nats.nkey_file: admin.nk from `crowsnest nats-auth`, nats.inbox_prefix: _INBOX_admin),\n" +
			"and creates or updates what the topology section declares: the raw, events, alerts and\n" +
			"dead-letter streams, the state bucket, the processors' membership bucket, the processor's\n" +
			"partition consumers and a consumer per enabled sink. Run it once per deployment and after\n" +
			"changing topology, then start every stage with ensure_topology: false under its own\n" +
			"identity. --check changes nothing and fails if a stream is missing or incompatible.\n" +
			"See docs/bus-security.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSetupConfig(configPathFromEnv(configPath))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			logger := telemetry.NewLogger(cfg.Log, cmd.ErrOrStderr())
			if err := natsSetup(cmd.Context(), cfg, check, logger, cmd.OutOrStdout()); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (default: $CROWSNEST_CONFIG): its nats, topology, processor and sinks sections")
	cmd.Flags().BoolVar(&check, "check", false, "verify only: change nothing, exit 1 if a stream is missing or incompatible")
	return cmd
}

// loadSetupConfig reads the shared file with the defaults of the deployed
// stages (no terminal sink: crowsnest-sink turns it off) and validates the
// sections setup reads. The embedded server is not setup's business.
func loadSetupConfig(path string) (Config, error) {
	base := newDefaultConfig()
	base.Sinks.Terminal.Enabled = false
	cfg, _, err := loadConfigOver(base, path)
	if err != nil {
		return cfg, err
	}
	err = errors.Join(
		stage.Section("log", cfg.Log.Validate()),
		stage.Section("nats", cfg.NATS.Validate()),
		stage.Section("topology", cfg.Topology.Validate()),
		stage.Section("processor", cfg.Processor.Validate()),
		stage.Section("sinks", cfg.Sinks.Validate()),
	)
	if err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func natsSetup(ctx context.Context, cfg Config, check bool, logger *slog.Logger, out io.Writer) error {
	nc, js, err := natsconn.Connect(ctx, cfg.NATS, logger)
	if err != nil {
		return err
	}
	defer natsconn.CloseAndWait(nc, 5*time.Second)

	if check {
		names := slices.Concat(topology.ProcessorStreams(), topology.SinkStreams())
		slices.Sort(names)
		names = slices.Compact(names)
		if err := topology.Verify(ctx, js, cfg.Topology, names); err != nil {
			return err
		}
		fmt.Fprintf(out, "topology ok: %s\n", strings.Join(names, ", "))
		return nil
	}

	if err := stage.PrepareTopology(ctx, nc, js, true, cfg.Topology, nil, logger); err != nil {
		if errors.Is(err, stage.ErrNoManagementRights) {
			return fmt.Errorf("nats-setup needs the admin identity (nats.nkey_file: the admin.nk seed from crowsnest nats-auth, nats.inbox_prefix: _INBOX_admin): %w", err)
		}
		return err
	}
	members, err := js.CreateOrUpdateKeyValue(ctx, topology.ProcessorsBucketConfig(cfg.Processor.Partitions.Lease))
	if err != nil {
		return fmt.Errorf("key-value bucket %s: %w", topology.ProcessorsBucket, err)
	}
	decls := topology.ProcessorConsumers(cfg.Topology.Partitions, cfg.Topology.Consumers.Processor)
	var sinks []string
	for _, c := range cfg.Sinks.Configured() {
		d, err := topology.SinkConsumers(c.Name, cfg.Topology.Consumers.Sink)
		if err != nil {
			return err
		}
		// Only the streams the sink reads (runner.streams): a consumer
		// nobody reads would only pile up pending messages.
		var streams []string
		for _, decl := range d {
			for _, k := range c.Runner.Streams {
				if k.Stream() == decl.Stream {
					decls = append(decls, decl)
					streams = append(streams, decl.Stream)
				}
			}
		}
		sinks = append(sinks, c.Name+" on "+strings.Join(streams, ", "))
	}
	for _, d := range decls {
		if _, err := topology.EnsureConsumer(ctx, js, d); err != nil {
			return fmt.Errorf("consumer %s on %s: %w", d.Config.Durable, d.Stream, err)
		}
	}

	for _, sc := range topology.Streams(cfg.Topology) {
		if err := printStream(ctx, js, out, sc.Name); err != nil {
			return err
		}
	}
	if err := printStream(ctx, js, out, topology.StateBucketStream); err != nil {
		return err
	}
	fmt.Fprintf(out, "bucket %s\tttl %s\n", members.Bucket(), cfg.Processor.Partitions.Lease)
	sinkList := strings.Join(sinks, "; ")
	if sinkList == "" {
		sinkList = "none enabled"
	}
	fmt.Fprintf(out, "consumers\tprocessor-p0..p%d on every raw stream; sinks: %s\n", cfg.Topology.Partitions-1, sinkList)
	return nil
}

func printStream(ctx context.Context, js jetstream.JetStream, out io.Writer, name string) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	info := s.CachedInfo()
	_, err = fmt.Fprintf(out, "stream %s\tsubjects %s\tmessages %d\tconsumers %d\n",
		name, strings.Join(info.Config.Subjects, " "), info.State.Msgs, info.State.Consumers)
	return err
}
