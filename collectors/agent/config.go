package agent

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/crowsnest-siem/crowsnest/collectors/auditd"
	"github.com/crowsnest-siem/crowsnest/collectors/docker"
	"github.com/crowsnest-siem/crowsnest/collectors/falcohttp"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/ingress"
	"github.com/crowsnest-siem/crowsnest/collectors/jsonlines"
	"github.com/crowsnest-siem/crowsnest/collectors/k8saudit"
	"github.com/crowsnest-siem/crowsnest/collectors/k8swebhook"
	"github.com/crowsnest-siem/crowsnest/collectors/procwatch"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
	"github.com/crowsnest-siem/crowsnest/collectors/redact"
	"github.com/crowsnest-siem/crowsnest/collectors/replay"
	"github.com/crowsnest-siem/crowsnest/collectors/spool"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// Config is the `collectors:` section: the shared publisher, its spool and
// redaction, and one block per source, each off unless enabled.
type Config struct {
	// Publish is the shared publisher: identity, in-flight bound, size limit.
	Publish publish.Config `yaml:"publish"`
	// Spool takes records while NATS is unreachable.
	Spool SpoolConfig `yaml:"spool"`
	// Redact removes secrets before anything is published.
	Redact RedactConfig `yaml:"redact"`

	// Replay replays the bundled sample (or given files) as live traffic.
	Replay ReplayConfig `yaml:"replay"`
	// K8sAuditFile tails Kubernetes audit logs (JSON lines).
	K8sAuditFile K8sAuditFileConfig `yaml:"k8s_audit_file"`
	// K8sAuditWebhook is the API server's audit webhook backend.
	K8sAuditWebhook K8sAuditWebhookConfig `yaml:"k8s_audit_webhook"`
	// FalcoHTTP receives Falco http_output and falcosidekick alerts.
	FalcoHTTP FalcoHTTPConfig `yaml:"falco_http"`
	// Procwatch is the sidecar runtime collector.
	Procwatch ProcwatchConfig `yaml:"procwatch"`
	// Docker follows the Docker engine's events.
	Docker DockerConfig `yaml:"docker"`
	// Auditd tails the Linux audit log.
	Auditd AuditdConfig `yaml:"auditd"`
	// JSONLines ships any tool's JSON lines under a declared source.
	JSONLines JSONLinesConfig `yaml:"json_lines"`
}

// SpoolConfig turns the disk spool on or off.
type SpoolConfig struct {
	Enabled      bool `yaml:"enabled"`
	spool.Config `yaml:",inline"`
}

// RedactConfig turns redaction on or off.
type RedactConfig struct {
	Enabled       bool `yaml:"enabled"`
	redact.Config `yaml:",inline"`
}

// ReplayConfig turns the replay source on or off.
type ReplayConfig struct {
	Enabled       bool `yaml:"enabled"`
	replay.Config `yaml:",inline"`
}

// K8sAuditFileConfig turns the audit log tail on or off.
type K8sAuditFileConfig struct {
	Enabled         bool `yaml:"enabled"`
	k8saudit.Config `yaml:",inline"`
}

// K8sAuditWebhookConfig turns the audit webhook backend on or off.
type K8sAuditWebhookConfig struct {
	Enabled           bool `yaml:"enabled"`
	k8swebhook.Config `yaml:",inline"`
}

// FalcoHTTPConfig turns the Falco receiver on or off.
type FalcoHTTPConfig struct {
	Enabled          bool `yaml:"enabled"`
	falcohttp.Config `yaml:",inline"`
}

// ProcwatchConfig turns the runtime collector on or off.
type ProcwatchConfig struct {
	Enabled          bool `yaml:"enabled"`
	procwatch.Config `yaml:",inline"`
}

// DockerConfig turns the Docker events source on or off.
type DockerConfig struct {
	Enabled       bool `yaml:"enabled"`
	docker.Config `yaml:",inline"`
}

// AuditdConfig turns the auditd log tail on or off.
type AuditdConfig struct {
	Enabled       bool `yaml:"enabled"`
	auditd.Config `yaml:",inline"`
}

// JSONLinesConfig turns the JSON lines source on or off.
type JSONLinesConfig struct {
	Enabled          bool `yaml:"enabled"`
	jsonlines.Config `yaml:",inline"`
}

// NewDefaultConfig replays the bundled sample (zero-config `crowsnest
// run`), with the spool and redaction on. Data dirs left empty are derived
// from the process's data dir.
func NewDefaultConfig() Config {
	rc := replay.NewDefaultConfig()
	rc.DataDir = ""
	kc := k8saudit.NewDefaultConfig()
	kc.DataDir = ""
	sc := spool.NewDefaultConfig()
	sc.Dir = ""
	dc := docker.NewDefaultConfig()
	dc.DataDir = ""
	ac := auditd.NewDefaultConfig()
	ac.Files.DataDir = ""
	jc := jsonlines.NewDefaultConfig()
	jc.Files.DataDir = ""
	return Config{
		Publish:         publish.NewDefaultConfig(),
		Spool:           SpoolConfig{Enabled: true, Config: sc},
		Redact:          RedactConfig{Enabled: true, Config: redact.NewDefaultConfig()},
		Replay:          ReplayConfig{Enabled: true, Config: rc},
		K8sAuditFile:    K8sAuditFileConfig{Config: kc},
		K8sAuditWebhook: K8sAuditWebhookConfig{Config: k8swebhook.NewDefaultConfig()},
		FalcoHTTP:       FalcoHTTPConfig{Config: falcohttp.NewDefaultConfig()},
		Procwatch:       ProcwatchConfig{Config: procwatch.NewDefaultConfig()},
		Docker:          DockerConfig{Config: dc},
		Auditd:          AuditdConfig{Config: ac},
		JSONLines:       JSONLinesConfig{Config: jc},
	}
}

// ApplySourceFlags maps `crowsnest run`'s source flags onto the config. An
// address is host:port (TLS: certificate and authentication come from the
// config file), https://host:port[/path], or http://host:port[/path] —
// plain HTTP, which only a loopback host may use (allow_insecure_loopback).
func (c *Config) ApplySourceFlags(k8sAuditFiles []string, k8sAuditWebhook, falcoHTTP string) error {
	var errs []error
	if len(k8sAuditFiles) > 0 {
		c.K8sAuditFile.Enabled = true
		c.K8sAuditFile.Paths = k8sAuditFiles
	}
	if k8sAuditWebhook != "" {
		c.K8sAuditWebhook.Enabled = true
		if err := applyAddr(&c.K8sAuditWebhook.Server, &c.K8sAuditWebhook.Path, k8sAuditWebhook); err != nil {
			errs = append(errs, fmt.Errorf("--k8s-audit-webhook: %w", err))
		}
	}
	if falcoHTTP != "" {
		c.FalcoHTTP.Enabled = true
		if err := applyAddr(&c.FalcoHTTP.Server, &c.FalcoHTTP.Path, falcoHTTP); err != nil {
			errs = append(errs, fmt.Errorf("--falco-http: %w", err))
		}
	}
	return errors.Join(errs...)
}

func applyAddr(srv *ingress.Config, path *string, addr string) error {
	if !strings.Contains(addr, "://") {
		srv.Listen = addr
		return nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	switch u.Scheme {
	case "http":
		srv.AllowInsecureLoopback = true
		srv.TLS.CertFile, srv.TLS.KeyFile, srv.TLS.ClientCAFile = "", "", ""
	case "https":
	default:
		return fmt.Errorf("address %q: scheme must be http or https", addr)
	}
	srv.Listen = u.Host
	if u.Path != "" && u.Path != "/" {
		*path = u.Path
	}
	return nil
}

// Validate checks every enabled block; errors carry key paths relative to
// `collectors`.
func (c Config) Validate() error {
	var errs []error
	add := func(key string, err error) {
		if err != nil {
			errs = append(errs, &config.ValidationError{Path: key, Err: err})
		}
	}
	add("publish", c.Publish.Validate())
	const derived = "(data dir)/collectors/x" // filled in by New
	if c.Spool.Enabled {
		sc := c.Spool.Config
		if sc.Dir == "" {
			sc.Dir = derived
		}
		add("spool", sc.Validate())
	}
	if c.Redact.Enabled {
		add("redact", c.Redact.Config.Validate())
	}
	if c.Replay.Enabled {
		rc := c.Replay.Config
		if rc.DataDir == "" {
			rc.DataDir = derived
		}
		add("replay", rc.Validate())
	}
	if c.K8sAuditFile.Enabled {
		kc := c.K8sAuditFile.Config
		if kc.DataDir == "" {
			kc.DataDir = derived
		}
		add("k8s_audit_file", kc.Validate())
	}
	if c.K8sAuditWebhook.Enabled {
		add("k8s_audit_webhook", c.K8sAuditWebhook.Config.Validate())
	}
	if c.FalcoHTTP.Enabled {
		add("falco_http", c.FalcoHTTP.Config.Validate())
	}
	if c.Procwatch.Enabled {
		add("procwatch", c.Procwatch.Config.Validate())
	}
	if c.Docker.Enabled {
		dc := c.Docker.Config
		if dc.DataDir == "" {
			dc.DataDir = derived
		}
		add("docker", dc.Validate())
	}
	if c.Auditd.Enabled {
		ac := c.Auditd.Config
		if ac.Files.DataDir == "" {
			ac.Files.DataDir = derived
		}
		add("auditd", ac.Validate())
	}
	if c.JSONLines.Enabled {
		jc := c.JSONLines.Config
		if jc.Files.DataDir == "" {
			jc.Files.DataDir = derived
		}
		add("json_lines", jc.Validate())
	}
	if !c.anyEnabled() {
		errs = append(errs, errors.New("no source enabled: enable one of collectors.replay, k8s_audit_file, k8s_audit_webhook, falco_http, procwatch, docker, auditd, json_lines, or give a source flag"))
	}
	return errors.Join(errs...)
}

func (c Config) anyEnabled() bool {
	return c.Replay.Enabled || c.K8sAuditFile.Enabled || c.K8sAuditWebhook.Enabled || c.FalcoHTTP.Enabled ||
		c.Procwatch.Enabled || c.Docker.Enabled || c.Auditd.Enabled || c.JSONLines.Enabled
}
