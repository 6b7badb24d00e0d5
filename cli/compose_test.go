package main

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeFile is the part of a Compose file this test checks.
type composeFile struct {
	Services map[string]struct {
		Image       string                    `yaml:"image"`
		Command     []string                  `yaml:"command"`
		Ports       []string                  `yaml:"ports"`
		Volumes     []string                  `yaml:"volumes"`
		Environment map[string]string         `yaml:"environment"`
		DependsOn   map[string]map[string]any `yaml:"depends_on"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestComposeIsConsistent checks deploy/compose without a container engine:
// every reference resolves, the shared crowsnest.yaml passes the strict
// loader with the stages' environment, and every address it names is a
// service listening on that port.
func TestComposeIsConsistent(t *testing.T) {
	dir := filepath.Join("..", "deploy", "compose")
	data, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	containerPorts := map[string][]string{}
	for name, svc := range cf.Services {
		if svc.Image == "" {
			t.Errorf("service %s: no image", name)
		}
		for dep := range svc.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which is not a service", name, dep)
			}
		}
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("service %s mounts %s, which does not exist", name, src)
				}
			} else if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("service %s uses volume %s, which is not declared", name, src)
			}
		}
		for _, p := range svc.Ports {
			_, c, _ := strings.Cut(p, ":")
			containerPorts[name] = append(containerPorts[name], c)
		}
	}

	// The stages' config, with each stage's environment applied, must load.
	for name, svc := range cf.Services {
		if !strings.HasPrefix(name, "crowsnest-") {
			continue
		}
		if !slices.Contains(svc.Command, "/etc/crowsnest/crowsnest.yaml") {
			t.Errorf("service %s does not read the shared config", name)
		}
		t.Run(name, func(t *testing.T) {
			for k, v := range svc.Environment {
				t.Setenv(k, v)
			}
			out, errOut, code := execute(t, "", "config", "check", filepath.Join(dir, "crowsnest.yaml"))
			if code != 0 {
				t.Fatalf("crowsnest.yaml with %s's environment: %s%s", name, out, errOut)
			}
		})
	}

	cfg, _, err := loadConfig(filepath.Join(dir, "crowsnest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reachable := func(what, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		ports, ok := containerPorts[u.Hostname()]
		if !ok {
			t.Errorf("%s %s: no service %q in compose.yaml", what, raw, u.Hostname())
			return
		}
		if !slices.Contains(ports, u.Port()) {
			t.Errorf("%s %s: service %s exposes %v, not %s", what, raw, u.Hostname(), ports, u.Port())
		}
	}
	if cfg.Embedded.Enabled {
		t.Error("the compose config must use the nats service, not an embedded server")
	}
	reachable("nats.url", cfg.NATS.URL)
	if cfg.Sinks.ClickHouse.Enabled {
		reachable("sinks.clickhouse.url", cfg.Sinks.ClickHouse.Sink.URL)
	}
	if cfg.Sinks.Elasticsearch.Enabled {
		for _, a := range cfg.Sinks.Elasticsearch.Sink.Addresses {
			reachable("sinks.elasticsearch.addresses", a)
		}
	}
}
