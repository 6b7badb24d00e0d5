package registry

import (
	"context"
	"testing"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
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
			cfg := f.NewDefaultConfig()
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
