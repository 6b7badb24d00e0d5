package agent

import (
	"fmt"
	"path/filepath"

	"github.com/crowsnest-siem/crowsnest/collectors/auditd"
	"github.com/crowsnest-siem/crowsnest/collectors/docker"
	"github.com/crowsnest-siem/crowsnest/collectors/falcohttp"
	"github.com/crowsnest-siem/crowsnest/collectors/jsonlines"
	"github.com/crowsnest-siem/crowsnest/collectors/k8saudit"
	"github.com/crowsnest-siem/crowsnest/collectors/k8swebhook"
	"github.com/crowsnest-siem/crowsnest/collectors/procwatch"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
	"github.com/crowsnest-siem/crowsnest/collectors/replay"
)

// buildSources builds every enabled source: the one list of them. A new
// source is a block in Config and a case here.
func buildSources(cfg Config, pub *publish.Publisher, ready func() error, s Settings) ([]namedSource, error) {
	var out []namedSource
	dataDir := func(set, name string) string {
		if set != "" {
			return set
		}
		return filepath.Join(s.DataDir, "collectors", name)
	}
	fail := func(name string, err error) ([]namedSource, error) {
		for _, src := range out {
			if src.close != nil {
				_ = src.close() // never served
			}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cfg.Replay.Enabled {
		rc := cfg.Replay.Config
		rc.DataDir = dataDir(rc.DataDir, "replay")
		r, err := replay.New(rc, replay.Settings{Publisher: pub, Logger: s.Logger})
		if err != nil {
			return fail("replay", err)
		}
		out = append(out, namedSource{name: "replay", run: r.Run})
	}
	if cfg.K8sAuditFile.Enabled {
		kc := cfg.K8sAuditFile.Config
		kc.DataDir = dataDir(kc.DataDir, "k8s_audit_file")
		t, err := k8saudit.New(kc, k8saudit.Settings{Publisher: pub, Logger: s.Logger})
		if err != nil {
			return fail("k8s_audit_file", err)
		}
		out = append(out, namedSource{name: "k8s_audit_file", run: t.Run})
	}
	if cfg.K8sAuditWebhook.Enabled {
		r, err := k8swebhook.New(cfg.K8sAuditWebhook.Config, k8swebhook.Settings{Publisher: pub, Logger: s.Logger, Registerer: s.Registry, Ready: ready})
		if err != nil {
			return fail("k8s_audit_webhook", err)
		}
		out = append(out, namedSource{name: "k8s_audit_webhook", run: r.Run, close: r.Close})
	}
	if cfg.FalcoHTTP.Enabled {
		r, err := falcohttp.New(cfg.FalcoHTTP.Config, falcohttp.Settings{Publisher: pub, Logger: s.Logger, Registerer: s.Registry, Ready: ready})
		if err != nil {
			return fail("falco_http", err)
		}
		out = append(out, namedSource{name: "falco_http", run: r.Run, close: r.Close})
	}
	if cfg.Procwatch.Enabled {
		c, err := procwatch.New(cfg.Procwatch.Config, procwatch.Settings{Publisher: pub, Logger: s.Logger})
		if err != nil {
			return fail("procwatch", err)
		}
		out = append(out, namedSource{name: "procwatch", run: c.Run})
	}
	if cfg.Docker.Enabled {
		dc := cfg.Docker.Config
		dc.DataDir = dataDir(dc.DataDir, "docker")
		d, err := docker.New(dc, docker.Settings{Publisher: pub, Logger: s.Logger})
		if err != nil {
			return fail("docker", err)
		}
		out = append(out, namedSource{name: "docker", run: d.Run})
	}
	if cfg.Auditd.Enabled {
		ac := cfg.Auditd.Config
		ac.Files.DataDir = dataDir(ac.Files.DataDir, "auditd")
		t, err := auditd.New(ac, auditd.Settings{Publisher: pub, Logger: s.Logger})
		if err != nil {
			return fail("auditd", err)
		}
		out = append(out, namedSource{name: "auditd", run: t.Run})
	}
	if cfg.JSONLines.Enabled {
		jc := cfg.JSONLines.Config
		jc.Files.DataDir = dataDir(jc.Files.DataDir, "json_lines")
		j, err := jsonlines.New(jc, jsonlines.Settings{Publisher: pub, Stdin: s.Stdin, Logger: s.Logger, Registerer: s.Registry, Ready: ready})
		if err != nil {
			return fail("json_lines", err)
		}
		out = append(out, namedSource{name: "json_lines", run: j.Run, close: j.Close})
	}
	return out, nil
}
