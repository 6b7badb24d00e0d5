package chartcheck

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// authValues is nats.auth on with the server's block and every seed
// Secret named, then override (a YAML fragment of nats.auth) merged over.
func authValues(override string) string {
	auth := map[string]any{
		"enabled":      true,
		"serverSecret": "nats-auth",
		"seeds": map[string]any{"admin": "nats-admin", "processor": "nats-processor", "nodeCollectors": "nats-nodes", "webhook": "nats-webhook", "sidecar": "nats-sidecar",
			"sinks": map[string]any{"clickhouse": "nats-sink-clickhouse"}},
	}
	var o map[string]any
	if err := yaml.Unmarshal([]byte(override), &o); err != nil {
		panic(err)
	}
	for k, v := range o {
		if m, ok := v.(map[string]any); ok && k == "seeds" {
			seeds := auth["seeds"].(map[string]any)
			for sk, sv := range m {
				if sm, ok := sv.(map[string]any); ok && sk == "sinks" {
					for name, secret := range sm {
						seeds["sinks"].(map[string]any)[name] = secret
					}
					continue
				}
				seeds[sk] = sv
			}
			continue
		}
		auth[k] = v
	}
	out, err := yaml.Marshal(map[string]any{"nats": map[string]any{"auth": auth}})
	if err != nil {
		panic(err)
	}
	return string(out)
}

// natsAuth runs `crowsnest nats-auth` as the chart README says, for every
// identity the chart can use (all collectors ids of the value sets, every
// sink), writing DIR/auth.conf and the seeds under DIR/seeds; it returns
// the identities it printed, name → "nkey_file PATH inbox_prefix P".
func natsAuth(t *testing.T, bin, dir string) map[string]string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ids := filepath.Join(dir, "identities.yaml")
	conf := "collectors: [k8s-audit-webhook, audit-hook, sidecar-example]\nnode_collectors: true\nsinks: [clickhouse, elasticsearch, file]\npartitions: 8\n"
	if err := os.WriteFile(ids, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "nats-auth", ids, "--seeds", filepath.Join(dir, "seeds"), "--out", filepath.Join(dir, "auth.conf"))
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("crowsnest nats-auth: %v\n%s", err, out)
	}
	users := map[string]string{}
	for line := range strings.Lines(string(out)) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok {
			users[name] = strings.ReplaceAll(rest, "\t", " ")
		}
	}
	if len(users) != 9 {
		t.Fatalf("crowsnest nats-auth printed %d identities, want 9:\n%s", len(users), out)
	}
	return users
}

// wantIdentity is the NATS identity each ConfigMap's component must use
// with nats.auth on.
func wantIdentity(cm, webhookID string) (name, collectorID string) {
	c := strings.TrimPrefix(cm, "cn-crowsnest-")
	switch {
	case c == "nats-setup":
		return "admin", ""
	case c == "processor":
		return "processor", ""
	case c == "node-collector":
		return "node-collectors", ""
	case c == "audit-webhook":
		return "collector-" + webhookID, webhookID
	case c == "sidecar-example":
		return "collector-sidecar-example", "sidecar-example"
	case strings.HasPrefix(c, "sink-"):
		return c, ""
	}
	return "", ""
}

// TestNATSIdentities: with nats.auth on, every component's crowsnest.yaml
// names its own identity's seed (the file crowsnest nats-auth writes, from
// the Secret the pod mounts, and no other), its inbox prefix, and
// ensure_topology: false; collectors with a fixed identity publish under its
// id; every identity is one nats-auth generates for the README's
// IDENTITIES.yaml; the nats-setup hook Job exists as a post-install and
// post-upgrade hook with the admin identity and the release's topology;
// the in-chart servers include the authorization block from the mounted
// Secret.
func TestNATSIdentities(t *testing.T) {
	bin := buildCLI(t)
	generated := natsAuth(t, bin, t.TempDir())
	for name, values := range valueSets {
		if !strings.Contains(values, "auth:\n    enabled: true") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			r := decode(t, render(t, values))
			var vals struct {
				Topology map[string]any `json:"topology"`
				NATS     struct {
					Enabled bool `json:"enabled"`
					Auth    struct {
						ServerSecret       string `json:"serverSecret"`
						WebhookCollectorID string `json:"webhookCollectorId"`
					} `json:"auth"`
				} `json:"nats"`
			}
			vals.NATS.Enabled = true
			vals.NATS.Auth.WebhookCollectorID = "k8s-audit-webhook"
			if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for key, p := range r.pods {
				if p.component == "nats" {
					continue
				}
				cm := ""
				for _, v := range p.spec.Volumes {
					if v.ConfigMap != nil && (v.Name == "config" || v.Name == "crowsnest-config") {
						cm = v.ConfigMap.Name
					}
				}
				id, collectorID := wantIdentity(cm, vals.NATS.Auth.WebhookCollectorID)
				if id == "" {
					t.Errorf("%s: no identity known for ConfigMap %s", key, cm)
					continue
				}
				seen[id] = true
				var cfg struct {
					EnsureTopology *bool `json:"ensure_topology"`
					NATS           struct {
						NKeyFile    string `json:"nkey_file"`
						InboxPrefix string `json:"inbox_prefix"`
						CredsFile   string `json:"creds_file"`
					} `json:"nats"`
					Collectors struct {
						Publish struct {
							CollectorID string `json:"collector_id"`
						} `json:"publish"`
					} `json:"collectors"`
					Topology map[string]any `json:"topology"`
				}
				if err := yaml.Unmarshal([]byte(r.configs[cm]), &cfg); err != nil {
					t.Fatalf("%s: %v", cm, err)
				}
				seed := "/var/run/secrets/crowsnest/nats/" + id + ".nk"
				if cfg.NATS.NKeyFile != seed || cfg.NATS.InboxPrefix != "_INBOX_"+id || cfg.NATS.CredsFile != "" {
					t.Errorf("%s: nats.nkey_file %q, inbox_prefix %q, creds_file %q; want %s, _INBOX_%s and no creds file",
						cm, cfg.NATS.NKeyFile, cfg.NATS.InboxPrefix, cfg.NATS.CredsFile, seed, id)
				}
				if id == "admin" {
					if cfg.EnsureTopology != nil {
						t.Errorf("%s: ensure_topology set for nats-setup, which always creates", cm)
					}
				} else if cfg.EnsureTopology == nil || *cfg.EnsureTopology {
					t.Errorf("%s: ensure_topology is not false: only the admin may manage streams", cm)
				}
				if cfg.Collectors.Publish.CollectorID != collectorID {
					t.Errorf("%s: collectors.publish.collector_id %q, want %q (its identity's id)", cm, cfg.Collectors.Publish.CollectorID, collectorID)
				}
				if g, ok := generated[id]; !ok {
					t.Errorf("%s: identity %s is not one crowsnest nats-auth generates", cm, id)
				} else if !strings.Contains(g, "inbox_prefix _INBOX_"+id) || !strings.Contains(g, "/"+id+".nk") {
					t.Errorf("%s: nats-auth prints %q for %s", cm, g, id)
				}
				for k, v := range vals.Topology {
					if fmt.Sprint(cfg.Topology[k]) != fmt.Sprint(v) {
						t.Errorf("%s: topology.%s = %v, want the release's %v", cm, k, cfg.Topology[k], v)
					}
				}
				// The pod mounts exactly its identity's seed, read-only.
				var seeds []string
				for _, v := range p.spec.Volumes {
					if v.Secret == nil {
						continue
					}
					for _, it := range v.Secret.Items {
						if strings.HasSuffix(it.Key, ".nk") {
							seeds = append(seeds, it.Key)
							if v.Name != "nats-seed" || it.Path != id+".nk" {
								t.Errorf("%s: seed %s from volume %s at %s", key, it.Key, v.Name, it.Path)
							}
						}
					}
				}
				if len(seeds) != 1 || seeds[0] != id+".nk" {
					t.Errorf("%s: mounts seeds %v, want only %s.nk", key, seeds, id)
				}
				mounted := false
				for _, c := range p.spec.Containers {
					for _, m := range c.VolumeMounts {
						if m.Name == "nats-seed" && m.MountPath == "/var/run/secrets/crowsnest/nats" && m.ReadOnly {
							mounted = true
						}
					}
				}
				if !mounted {
					t.Errorf("%s: the seed is not mounted read-only at /var/run/secrets/crowsnest/nats", key)
				}
			}
			for _, id := range []string{"admin", "processor", "node-collectors", "collector-" + vals.NATS.Auth.WebhookCollectorID, "sink-clickhouse"} {
				if !seen[id] {
					t.Errorf("no component connects as %s", id)
				}
			}

			if len(r.jobs) != 1 {
				t.Fatalf("%d Jobs rendered, want the nats-setup hook", len(r.jobs))
			}
			j := r.jobs[0]
			if got := j.Annotations["helm.sh/hook"]; got != "post-install,post-upgrade" {
				t.Errorf("Job %s: helm.sh/hook %q, want post-install,post-upgrade", j.Name, got)
			}
			if !strings.Contains(j.Annotations["helm.sh/hook-delete-policy"], "before-hook-creation") {
				t.Errorf("Job %s: hook-delete-policy %q must replace the previous run's Job", j.Name, j.Annotations["helm.sh/hook-delete-policy"])
			}
			c := container(t, "Job/"+j.Name, j.Spec.Template.Spec, "nats-setup")
			if strings.Join(c.Args, " ") != "nats-setup --config /etc/crowsnest/crowsnest.yaml" || !strings.Contains(c.Image, "/crowsnest") {
				t.Errorf("Job %s: runs %s %v, want the crowsnest image's nats-setup", j.Name, c.Image, c.Args)
			}
			if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit < 1 || j.Spec.ActiveDeadlineSeconds == nil {
				t.Errorf("Job %s: backoffLimit %v, activeDeadlineSeconds %v", j.Name, j.Spec.BackoffLimit, j.Spec.ActiveDeadlineSeconds)
			}
			setup := r.configs["cn-crowsnest-nats-setup"]
			for _, sink := range []string{"clickhouse", "elasticsearch", "file"} {
				enabled := strings.Contains(r.configs["cn-crowsnest-sink-"+sink], "nkey_file")
				var cfg struct {
					Sinks map[string]struct {
						Enabled bool `json:"enabled"`
					} `json:"sinks"`
				}
				if err := yaml.Unmarshal([]byte(setup), &cfg); err != nil {
					t.Fatal(err)
				}
				if cfg.Sinks[sink].Enabled != enabled {
					t.Errorf("nats-setup config: sinks.%s.enabled = %t, but the sink Deployment is rendered: %t (its consumers)", sink, cfg.Sinks[sink].Enabled, enabled)
				}
			}

			if vals.NATS.Enabled {
				if !strings.Contains(r.natsConf, `include "auth/auth.conf"`) {
					t.Errorf("nats.conf does not include the authorization block:\n%s", r.natsConf)
				}
				sts := r.pods["StatefulSet/cn-crowsnest-nats"]
				found := false
				for _, v := range sts.spec.Volumes {
					if v.Secret != nil && v.Secret.SecretName == vals.NATS.Auth.ServerSecret {
						for _, c := range sts.spec.Containers {
							for _, m := range c.VolumeMounts {
								found = found || (m.Name == v.Name && m.MountPath == "/etc/nats/auth" && m.ReadOnly && m.SubPath == "")
							}
						}
					}
				}
				if !found {
					t.Errorf("the NATS servers do not mount %s at /etc/nats/auth (read-only, not a subPath)", vals.NATS.Auth.ServerSecret)
				}
			} else if r.natsConf != "" {
				t.Error("nats.conf rendered for an external cluster")
			}
		})
	}
}

// TestNotesNATSAuth: the install notes warn while NATS takes any client,
// and with identities name the setup Job and its unpinned CLI image.
func TestNotesNATSAuth(t *testing.T) {
	for _, tt := range []struct {
		name, values string
		want         []string
	}{
		{"auth off", ``, []string{"WARNING: nats.auth.enabled is false"}},
		{"auth on", authValues(`{}`), []string{"logs job/cn-crowsnest-nats-setup", "images.cli"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(tt.values), &vals); err != nil {
				t.Fatal(err)
			}
			notes, err := RenderNotes(chartDir, rel, vals)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES.txt lacks %q:\n%s", w, notes)
				}
			}
			if tt.name == "auth on" && strings.Contains(notes, "nats.auth.enabled is false") {
				t.Errorf("NOTES.txt warns about auth with auth on:\n%s", notes)
			}
		})
	}
}
