// Package agent is a collector process: it runs the configured sources over
// one shared publisher, so every source gets the same delivery guarantees
// (msg ids, bounded in-flight, dead-letter for oversized records). Both
// `crowsnest run` and the crowsnest-collector binary use it.
//
// It must not know what happens after JetStream: no processor, no sinks.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/collectors/k8saudit"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
	"github.com/crowsnest-siem/crowsnest/collectors/replay"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
)

// Config is the `collectors:` section.
type Config struct {
	// Publish is the shared publisher: identity, in-flight bound, size limit.
	Publish publish.Config `yaml:"publish"`
	// Replay replays the bundled sample (or given files) as live traffic.
	Replay ReplayConfig `yaml:"replay"`
	// K8sAuditFile tails Kubernetes audit logs (JSON lines).
	K8sAuditFile K8sAuditFileConfig `yaml:"k8s_audit_file"`
}

// K8sAuditFileConfig turns the audit log tail on or off.
type K8sAuditFileConfig struct {
	Enabled         bool `yaml:"enabled"`
	k8saudit.Config `yaml:",inline"`
}

// ReplayConfig turns the replay source on or off.
type ReplayConfig struct {
	Enabled       bool `yaml:"enabled"`
	replay.Config `yaml:",inline"`
}

// NewDefaultConfig replays the bundled sample: zero-config `crowsnest run`.
func NewDefaultConfig() Config {
	rc := replay.NewDefaultConfig()
	rc.DataDir = "" // derived from the data dir unless set
	kc := k8saudit.NewDefaultConfig()
	kc.DataDir = ""
	return Config{
		Publish:      publish.NewDefaultConfig(),
		Replay:       ReplayConfig{Enabled: true, Config: rc},
		K8sAuditFile: K8sAuditFileConfig{Config: kc},
	}
}

// ApplySourceFlags maps `crowsnest run`'s source flags onto the config.
func (c *Config) ApplySourceFlags(k8sAuditFiles []string, k8sAuditWebhook, falcoHTTP string) error {
	var missing []string
	if len(k8sAuditFiles) > 0 {
		c.K8sAuditFile.Enabled = true
		c.K8sAuditFile.Paths = k8sAuditFiles
	}
	if k8sAuditWebhook != "" {
		missing = append(missing, "--k8s-audit-webhook")
	}
	if falcoHTTP != "" {
		missing = append(missing, "--falco-http")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%v: this source is not in this build yet (it lands with the collectors milestone); the bundled sample replay is available", missing)
	}
	return nil
}

// Validate checks every enabled source, paths relative to `collectors`.
func (c Config) Validate() error {
	var errs []error
	if err := c.Publish.Validate(); err != nil {
		errs = append(errs, &config.ValidationError{Path: "publish", Err: err})
	}
	if c.Replay.Enabled {
		rc := c.Replay.Config
		if rc.DataDir == "" {
			rc.DataDir = "(data dir)/collectors/replay" // filled in by New
		}
		if err := rc.Validate(); err != nil {
			errs = append(errs, &config.ValidationError{Path: "replay", Err: err})
		}
	}
	if c.K8sAuditFile.Enabled {
		kc := c.K8sAuditFile.Config
		if kc.DataDir == "" {
			kc.DataDir = "(data dir)/collectors/k8s_audit_file" // filled in by New
		}
		if err := kc.Validate(); err != nil {
			errs = append(errs, &config.ValidationError{Path: "k8s_audit_file", Err: err})
		}
	}
	if !c.Replay.Enabled && !c.K8sAuditFile.Enabled {
		errs = append(errs, errors.New("no source enabled: enable collectors.replay or collectors.k8s_audit_file, or give a source flag"))
	}
	return errors.Join(errs...)
}

// Settings is what the code gives the agent.
type Settings struct {
	Logger   *slog.Logger
	Metrics  *telemetry.ComponentMetrics
	Registry prometheus.Registerer
	// DataDir holds checkpoints (under DataDir/collectors).
	DataDir string
	// CloseTimeout bounds the wait for in-flight acknowledgements at shutdown.
	CloseTimeout time.Duration
}

// Agent runs the sources.
type Agent struct {
	pub     *publish.Publisher
	sources []namedSource
	log     *slog.Logger
	closeTO time.Duration
}

type namedSource struct {
	name string
	run  func(context.Context) error
}

// New builds the publisher and every enabled source.
func New(nc *nats.Conn, cfg Config, s Settings) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("collectors config: %w", err)
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.CloseTimeout <= 0 {
		s.CloseTimeout = 10 * time.Second
	}
	pub, err := publish.New(cfg.Publish, publish.Settings{Conn: nc, Logger: s.Logger, Metrics: s.Metrics, Registerer: s.Registry})
	if err != nil {
		return nil, err
	}
	a := &Agent{pub: pub, log: s.Logger.With("component", "collectors"), closeTO: s.CloseTimeout}
	if cfg.Replay.Enabled {
		rc := cfg.Replay.Config
		if rc.DataDir == "" {
			rc.DataDir = filepath.Join(s.DataDir, "collectors", "replay")
		}
		r, err := replay.New(rc, replay.Settings{Publisher: pub, Logger: s.Logger})
		if err != nil {
			_ = pub.Close(context.Background())
			return nil, err
		}
		a.sources = append(a.sources, namedSource{name: "replay", run: r.Run})
	}
	if cfg.K8sAuditFile.Enabled {
		kc := cfg.K8sAuditFile.Config
		if kc.DataDir == "" {
			kc.DataDir = filepath.Join(s.DataDir, "collectors", "k8s_audit_file")
		}
		t, err := k8saudit.New(kc, k8saudit.Settings{Publisher: pub, Logger: s.Logger})
		if err != nil {
			_ = pub.Close(context.Background())
			return nil, err
		}
		a.sources = append(a.sources, namedSource{name: "k8s_audit_file", run: t.Run})
	}
	return a, nil
}

// Run runs every source until ctx ends (or each finishes), then waits for the
// publisher's in-flight records to be acknowledged. A source finishing on its
// own (a bounded replay) is not an error.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(a.sources))
	for i, src := range a.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := src.run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				a.log.Error("source stopped", "source", src.name, "error", err)
				errs[i] = fmt.Errorf("%s: %w", src.name, err)
			}
		}()
	}
	wg.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), a.closeTO)
	defer cancel()
	if err := a.pub.Close(cctx); err != nil {
		errs = append(errs, fmt.Errorf("close publisher: %w", err))
	}
	return errors.Join(errs...)
}
