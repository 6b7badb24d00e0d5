package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/agent"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/daemon/stage"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
	"github.com/crowsnest-siem/crowsnest/sinks/registry"
)

// Config is the one configuration file every stage reads. Each section
// belongs to the package that uses it; this type only composes them.
type Config struct {
	Log       telemetry.LogConfig `yaml:"log"`
	Telemetry telemetry.Config    `yaml:"telemetry"`
	// DataDir is where the all-in-one keeps its state: the embedded JetStream
	// store, collector checkpoints and the file sink's output.
	DataDir  string          `yaml:"data_dir"`
	NATS     natsconn.Config `yaml:"nats"`
	Embedded EmbeddedConfig  `yaml:"embedded"`
	Topology topology.Config `yaml:"topology"`
	// EnsureTopology is the stage binaries' ensure_topology (daemon/stage),
	// known here so that one file serves every binary and `config check`
	// checks it. For `crowsnest run`, false verifies that the streams exist
	// (as the processor and sinks do) instead of creating them, for a
	// topology `crowsnest nats-setup` made as the admin.
	EnsureTopology bool            `yaml:"ensure_topology"`
	Collectors     agent.Config    `yaml:"collectors"`
	Processor      pipeline.Config `yaml:"processor"`
	Sinks          registry.Config `yaml:"sinks"`
}

// EmbeddedConfig is the in-process NATS server of `crowsnest run`.
type EmbeddedConfig struct {
	// Enabled starts an embedded server and connects to it, ignoring nats.url.
	// Turned off by --nats or by setting it false to use a real deployment.
	Enabled bool `yaml:"enabled"`
	// AuthDir, when set, makes the embedded server require nkey
	// authentication and every stage of the all-in-one connect as its own
	// identity (bus/authz: admin, processor, collector-<collectors.publish.collector_id>,
	// sink-<name> per enabled sink), with the least-privilege permissions of
	// docs/bus-security.md. The identities' seeds are kept here (created 0600 in a
	// 0700 directory on first run, reused after); admin.nk lets an operator
	// connect. Empty: no authentication, which is fine while host is 127.0.0.1
	// on a single-user machine.
	AuthDir         string `yaml:"auth_dir"`
	embedded.Config `yaml:",inline"`
}

// newDefaultConfig is zero-config `crowsnest run`: an embedded JetStream,
// the bundled sample replayed, files and the terminal as sinks. Stream limits
// are sized for a laptop: JetStream reserves max_bytes up front.
func newDefaultConfig() Config {
	c := Config{
		Log:            telemetry.NewDefaultLogConfig(),
		Telemetry:      telemetry.NewDefaultConfig(),
		DataDir:        ".data",
		NATS:           natsconn.NewDefaultConfig(),
		Embedded:       EmbeddedConfig{Enabled: true, Config: embedded.NewDefaultConfig()},
		Topology:       topology.NewDefaultConfig(),
		EnsureTopology: true,
		Collectors:     agent.NewDefaultConfig(),
		Processor:      pipeline.NewDefaultConfig(),
		Sinks:          registry.NewDefaultConfig(),
	}
	c.Embedded.DataDir = "" // derived from DataDir unless set
	c.Topology.Raw.MaxBytes = 256 * topology.MiB
	c.Topology.Events.MaxBytes = 1 * topology.GiB
	c.Topology.Alerts.MaxBytes = 256 * topology.MiB
	c.Topology.DeadLetter.MaxBytes = 256 * topology.MiB
	c.Topology.State.MaxBytes = 64 * topology.MiB
	return c
}

// loadConfig reads path (if any) over the defaults, then the environment.
func loadConfig(path string) (Config, []config.EnvOverride, error) {
	return loadConfigOver(newDefaultConfig(), path)
}

// loadConfigOver reads path (if any) over cfg, then the environment.
func loadConfigOver(cfg Config, path string) (Config, []config.EnvOverride, error) {
	var applied []config.EnvOverride
	opt := config.OnEnvOverride(func(o config.EnvOverride) { applied = append(applied, o) })
	var err error
	if path != "" {
		err = config.Load(path, &cfg, opt)
	} else {
		err = config.Decode(nil, "(defaults)", &cfg, opt)
	}
	return cfg, applied, err
}

// resolve fills what derives from other settings (paths under the data dir).
func (c *Config) resolve() {
	if c.Embedded.DataDir == "" {
		c.Embedded.DataDir = filepath.Join(c.DataDir, "nats")
	}
}

// Validate checks every section, each error naming its key path.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, config.FieldError("data_dir", "must be set: the all-in-one keeps its state there"))
	}
	sections := []struct {
		key string
		err error
	}{
		{"log", c.Log.Validate()},
		{"telemetry", c.Telemetry.Validate()},
		{"topology", c.Topology.Validate()},
		{"collectors", c.Collectors.Validate()},
		{"processor", c.Processor.Validate()},
		{"sinks", c.Sinks.Validate()},
	}
	if c.Embedded.Enabled {
		sections = append(sections, struct {
			key string
			err error
		}{"embedded", c.Embedded.Config.Validate()}, struct {
			key string
			err error
		}{"nats", c.embeddedClientTLS()})
	} else {
		sections = append(sections, struct {
			key string
			err error
		}{"nats", c.NATS.Validate()})
	}
	for _, s := range sections {
		errs = append(errs, stage.Section(s.key, s.err))
	}
	return errors.Join(errs...)
}

// configPathFromEnv lets deployments pass the file without arguments.
func configPathFromEnv(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv("CROWSNEST_CONFIG")
}

func describeOverrides(applied []config.EnvOverride) string {
	var b strings.Builder
	for _, o := range applied {
		fmt.Fprintf(&b, "  %s -> %s = %s\n", o.Var, o.Path, redactUserinfo(o.Value))
	}
	return b.String()
}

// embeddedClientTLS checks that the all-in-one's own stages can connect to
// its embedded server when that requires TLS: they use nats.tls.
func (c *Config) embeddedClientTLS() error {
	t, client := c.Embedded.TLS, c.NATS.TLS
	var errs []error
	if t.Enabled() && client.CAFile == "" && !client.InsecureSkipVerify {
		errs = append(errs, config.FieldError("tls.ca_file", "must name the CA of embedded.tls.cert_file: the all-in-one's stages connect to the embedded server with nats.tls"))
	}
	if t.Verify && client.CertFile == "" {
		errs = append(errs, config.FieldError("tls.cert_file", "must be set (with key_file): embedded.tls.verify requires a client certificate of every client, the all-in-one's own stages included"))
	}
	if (client.CertFile == "") != (client.KeyFile == "") {
		errs = append(errs, config.FieldError("tls", "cert_file and key_file go together"))
	}
	return errors.Join(errs...)
}

// redactUserinfo hides user:password@ in each URL of a value: an override
// of a URL setting (nats.url, a store address) may carry credentials that
// are not a Secret field, and `config check` prints the overrides.
func redactUserinfo(v string) string {
	if !strings.Contains(v, "@") {
		return v
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			scheme, rest = "", p
		}
		at := strings.LastIndexByte(rest, '@')
		slash := strings.IndexByte(rest, '/')
		if at < 0 || (slash >= 0 && slash < at) {
			continue
		}
		if ok {
			scheme += "://"
		}
		parts[i] = scheme + "[REDACTED]@" + rest[at+1:]
	}
	return strings.Join(parts, ",")
}
