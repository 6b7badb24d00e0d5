// Package stage is the start-up every stage binary shares (crowsnest-collector,
// crowsnest-processor, crowsnest-sink): load the one configuration file,
// set up logging and the telemetry server, connect to NATS, make sure the
// topology exists, and run until SIGTERM or SIGINT, then let the stage drain.
//
// It knows nothing of what a stage does; the all-in-one `crowsnest run`
// composes stages itself and does not use it.
package stage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
)

// Common is the part of the configuration file every stage reads. A stage's
// root config embeds it inline, adds its own section, and declares the other
// stages' sections as yaml.Node so one file serves every binary.
type Common struct {
	Log       telemetry.LogConfig `yaml:"log"`
	Telemetry telemetry.Config    `yaml:"telemetry"`
	NATS      natsconn.Config     `yaml:"nats"`
	Topology  topology.Config     `yaml:"topology"`
	// EnsureTopology creates or updates the streams at start-up, which
	// needs stream-management rights (the admin identity, or no auth). Turn
	// it off where stages run as their own identities: the stage then only
	// verifies that the streams it uses exist, and the admin creates them
	// once with `crowsnest nats-setup`.
	EnsureTopology bool `yaml:"ensure_topology"`
}

// NewCommon returns the shared defaults.
func NewCommon() Common {
	return Common{
		Log:            telemetry.NewDefaultLogConfig(),
		Telemetry:      telemetry.NewDefaultConfig(),
		NATS:           natsconn.NewDefaultConfig(),
		Topology:       topology.NewDefaultConfig(),
		EnsureTopology: true,
	}
}

// Validate checks the shared sections.
func (c Common) Validate() error {
	return errors.Join(
		Section("log", c.Log.Validate()),
		Section("telemetry", c.Telemetry.Validate()),
		Section("nats", c.NATS.Validate()),
		Section("topology", c.Topology.Validate()),
	)
}

// Section puts a config section's key before each of err's field paths, so
// every message reads "processor.fetch_batch: ...".
func Section(key string, err error) error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, Section(key, e))
		}
		return errors.Join(out...)
	}
	var ve *config.ValidationError
	if errors.As(err, &ve) && ve == err {
		return Section(joinKey(key, ve.Path), ve.Err)
	}
	if fp, ok := err.(interface{ FieldPath() string }); ok {
		return &config.ValidationError{Path: joinKey(key, fp.FieldPath()), Err: errors.Unwrap(err)}
	}
	if msg := err.Error(); strings.HasPrefix(msg, key+".") || strings.HasPrefix(msg, key+":") {
		return err // the section already names itself
	}
	return &config.ValidationError{Path: key, Err: err}
}

func joinKey(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "." + b
}

// Root is what a stage's root config must offer.
type Root interface {
	Shared() *Common
	Validate() error
}

// Env is what a running stage gets.
type Env struct {
	Logger    *slog.Logger
	Registry  *prometheus.Registry
	Metrics   *telemetry.ComponentMetrics
	Conn      *nats.Conn
	JetStream jetstream.JetStream
	Telemetry *telemetry.Server
}

// Option configures Main.
type Option func(*options)

type options struct {
	streams []string
	// awaitSetup bounds how long start-up waits for streams that do not
	// exist yet (ensure_topology off); 0 fails at once.
	awaitSetup time.Duration
}

// WithStreams names the streams the stage uses (topology.ProcessorStreams,
// topology.SinkStreams): with ensure_topology off, Main verifies they exist
// before run starts. Without it nothing is verified (a collector, which may
// not look at streams and spools until they exist).
func WithStreams(names []string) Option {
	return func(o *options) { o.streams = names }
}

// Main parses -config, loads cfg, and runs run until a signal; it returns the
// process exit code. run must return once its context is cancelled and its
// work is drained.
func Main(name string, cfg Root, args []string, stderr io.Writer, run func(ctx context.Context, env *Env) error, opts ...Option) int {
	o := options{awaitSetup: setupWaitFor}
	for _, opt := range opts {
		opt(&o)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("CROWSNEST_CONFIG"), "configuration file (default $CROWSNEST_CONFIG)")
	if err := fs.Parse(args); err != nil {
		// -h is a request, not a mistake: exit 0 as flag.ExitOnError does
		// (the image check runs each stage binary with -h as uid 65532).
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := start(ctx, name, *path, cfg, stderr, o, run); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func start(ctx context.Context, name, path string, cfg Root, stderr io.Writer, o options, run func(context.Context, *Env) error) error {
	var err error
	if path != "" {
		err = config.Load(path, cfg)
	} else {
		err = config.Decode(nil, "(defaults)", cfg)
	}
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	c := cfg.Shared()
	logger := telemetry.NewLogger(c.Log, stderr).With("stage", name)
	reg := telemetry.NewRegistry()
	metrics, err := telemetry.NewComponentMetrics(reg)
	if err != nil {
		return err
	}
	tel := telemetry.New(c.Telemetry, reg, logger)
	if c.Telemetry.Listen != "" {
		if err := tel.Start(ctx); err != nil {
			return fmt.Errorf("telemetry server: %w", err)
		}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5e9)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	if c.NATS.Name == "" || c.NATS.Name == natsconn.NewDefaultConfig().Name {
		c.NATS.Name = name
	}
	nc, js, err := natsconn.Connect(ctx, c.NATS, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	tel.RegisterReadiness("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected to NATS")
		}
		return nil
	})
	// Not ready while the streams are missing (a stage verifying the
	// topology may wait minutes for the admin's setup): a collector taking
	// traffic then would only spool it, and a rollout would look done.
	var topologyReady atomic.Bool
	tel.RegisterReadiness("topology", func(context.Context) error {
		if !topologyReady.Load() {
			return errors.New("the streams this stage uses are not ready yet (waiting for them, or for " + topology.SetupCommand + ")")
		}
		return nil
	})
	if err := prepareTopology(ctx, nc, js, c.EnsureTopology, c.Topology, o.streams, logger, topologyRetryFor, o.awaitSetup); err != nil {
		return err
	}
	topologyReady.Store(true)
	logger.Info("started")
	err = run(ctx, &Env{Logger: logger, Registry: reg, Metrics: metrics, Conn: nc, JetStream: js, Telemetry: tel})
	if dErr := nc.Drain(); dErr != nil && !errors.Is(dErr, nats.ErrConnectionClosed) {
		logger.Warn("drain NATS connection", "error", dErr)
	}
	logger.Info("stopped")
	return err
}

// ErrNoManagementRights is matched (errors.Is) by the error PrepareTopology
// returns when ensure is on and the server refuses this identity the
// stream-management calls.
var ErrNoManagementRights = errors.New("this NATS identity may not manage streams")

// ErrInboxRefused is matched (errors.Is) by the error PrepareTopology
// returns when the server refuses this client its reply subscription: with
// per-identity permissions, nats.inbox_prefix is not the identity's.
var ErrInboxRefused = errors.New("the server refused this client's reply inbox")

// PrepareTopology readies the topology for a stage. With ensure it runs
// topology.Ensure; without, topology.Verify on streams, which names any
// missing stream and the setup command. Either way it stops at the first
// permission the server refuses (a denied request would otherwise only
// time out, one after another) and says what to change: an identity
// without management rights set to ensure, or a client whose
// nats.inbox_prefix is not its identity's. logger may be nil.
func PrepareTopology(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, ensure bool, cfg topology.Config, streams []string, logger *slog.Logger) error {
	if !ensure && len(streams) == 0 {
		return nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := natsconn.OnPermissionViolation(nc, cancel)
	defer stop()
	var err error
	if ensure {
		err = topology.Ensure(pctx, js, cfg, topology.WithLogger(logger))
	} else if err = topology.Verify(pctx, js, cfg, streams); err != nil {
		err = fmt.Errorf("verify topology: %w", err)
	}
	cause := context.Cause(pctx)
	if ctx.Err() != nil || !errors.Is(cause, nats.ErrPermissionViolation) {
		return err
	}
	msg := cause.Error()
	switch {
	case strings.Contains(msg, "Subscription to"):
		return fmt.Errorf("prepare topology: %w (%v): set nats.inbox_prefix to this identity's _INBOX_<identity name> (crowsnest nats-auth prints it)",
			ErrInboxRefused, cause)
	case ensure:
		return fmt.Errorf("ensure topology: %w (the server refused %v): ensure_topology: true needs the admin identity; create the topology once with it (%s) and start this stage with ensure_topology: false",
			ErrNoManagementRights, cause, topology.SetupCommand)
	default:
		return fmt.Errorf("verify topology: the server refused %v: this identity may not look at the streams this stage uses (is nats.nkey_file this stage's identity?)", cause)
	}
}

// topologyRetryFor bounds how long start-up waits out a JetStream that does
// not answer: a cluster node restarting or a meta leader being elected
// made a stage exit on its first timed-out topology call (found by
// e2e/chaos TestClusterRestarts).
const topologyRetryFor = 2 * time.Minute

// setupWaitFor bounds how long a stage verifying the topology waits for
// missing streams: in a deployment the admin's crowsnest nats-setup (a Helm
// hook Job) may run after the stages start, and a stage that waits starts
// as soon as the streams exist instead of crash-looping into a growing
// restart back-off. After it the stage exits naming the missing streams.
const setupWaitFor = 10 * time.Minute

// prepareTopology is PrepareTopology retried, with backoff and a warning
// each time, while its error is transient (see transientJetStream), for at
// most limit, or while streams are missing (topology.ErrMissing, verify
// mode), for at most awaitSetup; then it returns the last error.
func prepareTopology(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, ensure bool, cfg topology.Config, streams []string, logger *slog.Logger, limit, awaitSetup time.Duration) error {
	begin := time.Now()
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := PrepareTopology(ctx, nc, js, ensure, cfg, streams, logger)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var deadline time.Time
		msg := "JetStream did not answer the start-up topology calls; retrying"
		switch {
		case transientJetStream(err):
			deadline = begin.Add(limit)
		case !ensure && errors.Is(err, topology.ErrMissing):
			deadline = begin.Add(awaitSetup)
			msg = "streams missing: waiting for " + topology.SetupCommand
		default:
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return err
		}
		logger.Warn(msg, "attempt", attempt, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// transientJetStream is topology.Transient, except that this stage's
// refused identity or reply inbox is never transient.
func transientJetStream(err error) bool {
	if errors.Is(err, ErrNoManagementRights) || errors.Is(err, ErrInboxRefused) {
		return false
	}
	return topology.Transient(err)
}
