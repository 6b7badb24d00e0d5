package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/webhook"
)

func TestFactories(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Factories() {
		t.Run(f.Type, func(t *testing.T) {
			if err := topology.ValidateToken(f.Type); err != nil {
				t.Errorf("type %q cannot name a consumer: %v", f.Type, err)
			}
			if seen[f.Type] {
				t.Errorf("type %q registered twice", f.Type)
			}
			seen[f.Type] = true
			if f.NewDefaultConfig == nil || f.Create == nil {
				t.Fatal("factory without NewDefaultConfig or Create")
			}
			cfg := withTarget(f.NewDefaultConfig())
			if err := cfg.Validate(); err != nil {
				t.Errorf("default config invalid: %v", err)
			}
			s, err := f.Create(context.Background(), cfg, sink.Settings{DataDir: t.TempDir()})
			if err != nil {
				t.Fatalf("Create with defaults: %v", err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
			if got, ok := Lookup(f.Type); !ok || got.Type != f.Type {
				t.Errorf("Lookup(%q) = %v, %v", f.Type, got.Type, ok)
			}
		})
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup(nope) found a factory")
	}
}

// withTarget completes the defaults of a sink that has no default target:
// the webhook has no sensible default URL, so its default fails Validate
// until the user names one (the sink is off by default).
func withTarget(cfg sink.Config) sink.Config {
	if c, ok := cfg.(webhook.Config); ok {
		c.URL = "http://127.0.0.1:1/hook"
		return c
	}
	return cfg
}

// A config of another sink's type is an error, not a panic.
func TestCreateWrongConfig(t *testing.T) {
	fs := Factories()
	if len(fs) < 2 {
		t.Skip("needs two sinks")
	}
	_, err := fs[0].Create(context.Background(), fs[1].NewDefaultConfig(), sink.Settings{DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("Create accepted another sink's config")
	}
}

func TestEveryConfiguredTypeHasAFactory(t *testing.T) {
	for _, c := range NewDefaultConfig().Configured() {
		if c.Factory.Create == nil {
			t.Errorf("sink %q has a config block but no factory in Factories", c.Name)
		}
	}
	if err := NewDefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

// The webhook is off by default, forwards alerts only, and once enabled
// needs a URL, reported under its block's path.
func TestWebhookBlock(t *testing.T) {
	c := NewDefaultConfig()
	if c.Webhook.Enabled {
		t.Error("webhook enabled by default")
	}
	if got := c.Webhook.Runner.Streams; len(got) != 1 || got[0] != sink.KindAlerts {
		t.Errorf("webhook streams = %v, want [alerts]", got)
	}
	c.Webhook.Enabled = true
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "webhook.url: must be set") {
		t.Errorf("enabled webhook without url: %v", err)
	}
	c.Webhook.Sink.URL = "https://hooks.example.com/x"
	if err := c.Validate(); err != nil {
		t.Errorf("enabled webhook with url: %v", err)
	}
}
