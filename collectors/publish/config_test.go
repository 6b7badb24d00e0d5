package publish_test

import (
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/collectors/publish"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*publish.Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(*publish.Config) {}, nil},
		{"collector id with a dot", func(c *publish.Config) { c.CollectorID = "node1.example.com" }, []string{"collector_id", "node1_example_com"}},
		{"collector id wildcard", func(c *publish.Config) { c.CollectorID = "*" }, []string{"collector_id"}},
		{"empty collector id", func(c *publish.Config) { c.CollectorID = "" }, []string{"collector_id"}},
		{"empty node", func(c *publish.Config) { c.Node = "" }, []string{"node: must be set"}},
		{"collector id from a dotted node", func(c *publish.Config) {
			c.CollectorID, c.Node, c.CollectorIDFromNode = "*", "ip-10-0-0-1.ec2.internal", true
		}, nil},
		{"collector id from an empty node", func(c *publish.Config) { c.Node, c.CollectorIDFromNode = "", true }, []string{"node: must be set"}},
		{"node with newline", func(c *publish.Config) { c.Node = "a\nb" }, []string{"node: must not contain control"}},
		{"node too long", func(c *publish.Config) { c.Node = strings.Repeat("n", 254) }, []string{"node: must be at most 253"}},
		{"no in flight", func(c *publish.Config) { c.MaxInFlight = 0 }, []string{"max_in_flight"}},
		{"tiny events", func(c *publish.Config) { c.MaxEventBytes = 10 }, []string{"max_event_bytes"}},
		{"sample larger than event", func(c *publish.Config) { c.DeadLetterSampleBytes = 2 * config.MiB }, []string{"dead_letter_sample_bytes"}},
		{"short ack timeout", func(c *publish.Config) { c.AckTimeout = time.Millisecond }, []string{"ack_timeout"}},
		{"backoff inverted", func(c *publish.Config) { c.Retry.MaxBackoff = time.Millisecond }, []string{"retry.max_backoff"}},
		{"no backoff", func(c *publish.Config) { c.Retry.InitialBackoff = 0 }, []string{"retry.initial_backoff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := publish.NewDefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigDecode(t *testing.T) {
	cfg := publish.NewDefaultConfig()
	yml := "collector_id: edge-1\nnode: worker-3\nmax_in_flight: 64\nmax_event_bytes: 256KiB\nretry:\n  max_backoff: 10s\n"
	if err := config.Decode([]byte(yml), "publish.yaml", &cfg, config.WithEnviron(nil)); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if cfg.CollectorID != "edge-1" || cfg.Node != "worker-3" || cfg.MaxInFlight != 64 ||
		cfg.MaxEventBytes != 256*config.KiB || cfg.Retry.MaxBackoff != 10*time.Second ||
		cfg.Retry.InitialBackoff != 100*time.Millisecond {
		t.Fatalf("decoded %+v", cfg)
	}
	if err := config.ValidateAll("publish", &cfg); err != nil {
		t.Fatalf("ValidateAll: %v", err)
	}

	fromNode := publish.NewDefaultConfig()
	if err := config.Decode([]byte("collector_id_from_node: true\n"), "publish.yaml", &fromNode,
		config.WithEnviron(nil)); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	fromNode.Node = "ip-10-0-0-1.ec2.internal"
	if got := fromNode.Resolved().CollectorID; got != "ip-10-0-0-1_ec2_internal" {
		t.Fatalf("collector_id_from_node: collector id %q, want ip-10-0-0-1_ec2_internal", got)
	}
	if got := publish.NewDefaultConfig().Resolved().CollectorID; got != publish.NewDefaultConfig().CollectorID {
		t.Fatalf("without collector_id_from_node Resolved changed the id to %q", got)
	}

	typo := publish.NewDefaultConfig()
	err := config.Decode([]byte("max_in_flite: 3\n"), "publish.yaml", &typo, config.WithEnviron(nil))
	if err == nil || !strings.Contains(err.Error(), "max_in_flite") {
		t.Fatalf("Decode(typo) = %v, want an unknown-key error", err)
	}
}
