package sources_test

import (
	"slices"
	"testing"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
)

// TestSourcesAreDeclaredOnce: every registered source is one the bus
// declares (bus/topology is the one list of sources and their streams).
func TestSourcesAreDeclaredOnce(t *testing.T) {
	reg, err := sources.NewRegistry(normalize.NewDefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	got := reg.Sources()
	if want := []string{"auditd", "collector", "docker", "falco", "json", "k8s_audit", "procwatch", "tetragon"}; !slices.Equal(got, want) {
		t.Errorf("sources %v, want %v", got, want)
	}
	all := topology.Sources()
	slices.Sort(all)
	if !slices.Equal(got, all) {
		t.Errorf("sources %v, the bus declares %v: every raw stream needs a mapper", got, all)
	}
	for _, s := range got {
		if !topology.ValidSource(s) {
			t.Errorf("source %q is not declared in bus/topology", s)
		}
		if _, ok := reg.Lookup(s); !ok {
			t.Errorf("Lookup(%q) failed", s)
		}
	}
	if _, ok := reg.Lookup("no_such_source"); ok {
		t.Error("Lookup of an unknown source succeeded")
	}
}
