package vouch

import (
	"slices"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

type claims struct{ host, hostname, node, ns string }

func event(c claims) *schemas.Event {
	var ev schemas.Event
	ev.Host.Name, ev.Host.Hostname = c.host, c.hostname
	ev.Crowsnest.Collector.Node = c.node
	ev.Orchestrator.Namespace = c.ns
	return &ev
}

func TestCheck(t *testing.T) {
	bindings := []Binding{
		{Collector: "webhook-1", Node: "cp-1.example.com"},
		{Collector: "node_{node}"},
		{Collector: "sidecar_{namespace}_*"},
		{Collector: "ds_{node}_{namespace}"},
		{Collector: "pinned-*", Node: "edge-1", Namespace: "edge"},
	}
	tests := []struct {
		name      string
		unlisted  Unlisted
		collector string
		claims    claims
		want      []string
	}{
		{"literal node, same", "", "webhook-1", claims{host: "cp-1.example.com", node: "cp-1.example.com", ns: "kube-system"}, nil},
		{"literal node compares as tokens", "", "webhook-1", claims{host: "CP-1.example.com", hostname: "cp-1_example_com"}, nil},
		{"literal node, other host", "", "webhook-1", claims{host: "cp-2.example.com", node: "cp-1.example.com"}, []string{FieldHostName}},
		{"header node is a claim too", "", "webhook-1", claims{host: "cp-1.example.com", node: "elsewhere"}, []string{FieldCollectorNode}},
		{"node binding leaves namespaces alone", "", "webhook-1", claims{ns: "anything"}, nil},
		{"captured node, same", "", "node_worker-3", claims{host: "worker-3", hostname: "worker-3", node: "worker-3"}, nil},
		{"captured node, dotted name", "", "node_ip-10-0-0-1_ec2_internal", claims{host: "ip-10-0-0-1.ec2.internal"}, nil},
		{"captured node, other host", "", "node_worker-3", claims{host: "worker-4", hostname: "worker-3", node: "worker-4"}, []string{FieldHostName, FieldCollectorNode}},
		{"captured node, a longer name is another node", "", "node_worker-3", claims{host: "worker-3.evil"}, []string{FieldHostName}},
		{"captured namespace, same", "", "sidecar_shop_web-0", claims{ns: "shop", host: "any-node"}, nil},
		{"captured namespace, other", "", "sidecar_shop_web-0", claims{ns: "kube-system"}, []string{FieldNamespace}},
		{"both captured", "", "ds_worker-1_monitoring", claims{host: "worker-2", ns: "default"}, []string{FieldHostName, FieldNamespace}},
		{"both captured, same", "", "ds_worker-1_monitoring", claims{host: "worker-1", ns: "monitoring"}, nil},
		{"wildcard with fixed places", "", "pinned-abc", claims{host: "edge-1", ns: "prod"}, []string{FieldNamespace}},
		{"empty claims are not marked", "", "node_worker-3", claims{}, nil},
		{"unlisted trusted", "", "stranger", claims{host: "x", ns: "y"}, nil},
		{"unlisted marked", MarkUnlisted, "stranger", claims{host: "x", hostname: "x", node: "x", ns: "y"}, []string{FieldHostName, FieldHostHostname, FieldCollectorNode, FieldNamespace}},
		{"unlisted marked: listed ones still vouched", MarkUnlisted, "node_worker-3", claims{host: "worker-3"}, nil},
		{"pattern must match whole token", "", "xnode_worker-3", claims{host: "worker-9"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			cfg.Collectors = bindings
			if tt.unlisted != "" {
				cfg.Unlisted = tt.unlisted
			}
			v, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second run reads the cache
				ev := event(tt.claims)
				n := v.Check(tt.collector, ev)
				if got := ev.Crowsnest.SpoofedFields; !slices.Equal(got, tt.want) || n != len(tt.want) {
					t.Fatalf("spoofed %v (%d), want %v", got, n, tt.want)
				}
			}
		})
	}
}

func TestNoBindingsChecksNothing(t *testing.T) {
	v, err := New(NewDefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ev := event(claims{host: "x", ns: "y"})
	if v.Check("anyone", ev) != 0 || v.Rejects() {
		t.Error("the default config marked or rejects")
	}
	var nilV *Voucher
	if nilV.Check("anyone", ev) != 0 || nilV.Rejects() {
		t.Error("a nil Voucher marked")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" valid
	}{
		{"default", NewDefaultConfig(), ""},
		{"on_spoof reject", Config{OnSpoof: Reject, Collectors: []Binding{{Collector: "a", Node: "n"}}}, ""},
		{"on_spoof typo", Config{OnSpoof: "drop"}, "on_spoof"},
		{"unlisted typo", Config{Unlisted: "ignore"}, "unlisted"},
		{"empty collector", Config{Collectors: []Binding{{Node: "n"}}}, "collectors[0]"},
		{"binds nothing", Config{Collectors: []Binding{{Collector: "a"}}}, "neither"},
		{"captured and fixed node", Config{Collectors: []Binding{{Collector: "n_{node}", Node: "x"}}}, "one or the other"},
		{"unknown placeholder", Config{Collectors: []Binding{{Collector: "n_{pod}"}}}, "unknown placeholder"},
		{"placeholder twice", Config{Collectors: []Binding{{Collector: "{node}_{node}"}}}, "twice"},
		{"not a token", Config{Collectors: []Binding{{Collector: "a.b", Node: "n"}}}, "collectors[0]"},
		{"pattern literal not a token", Config{Collectors: []Binding{{Collector: "a.{node}"}}}, "collectors[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate = %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want an error about %s", err, tt.want)
			}
			if _, nerr := New(tt.cfg); (nerr == nil) != (err == nil) {
				t.Errorf("New = %v, Validate = %v", nerr, err)
			}
		})
	}
}

// FuzzSameToken: the allocation-free comparison agrees with
// topology.SanitizeToken, which names the collector tokens.
func FuzzSameToken(f *testing.F) {
	for _, s := range []string{"", "worker-1", "Worker-1.Example.COM", "ü.x", strings.Repeat("a", 130), "a b"} {
		f.Add(s, "worker-1")
	}
	f.Fuzz(func(t *testing.T, claim, other string) {
		if claim == "" {
			return
		}
		tok := topology.SanitizeToken(claim)
		if !sameToken(claim, tok) {
			t.Fatalf("sameToken(%q, SanitizeToken = %q) = false", claim, tok)
		}
		if got, want := sameToken(claim, other), tok == other; got != want {
			t.Fatalf("sameToken(%q, %q) = %v, SanitizeToken says %v", claim, other, got, want)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	cfg := NewDefaultConfig()
	cfg.Collectors = []Binding{{Collector: "webhook-1", Node: "cp-1"}, {Collector: "node_{node}"}}
	v, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ev := event(claims{host: "worker-3", hostname: "worker-3", node: "worker-3", ns: "shop"})
	b.ReportAllocs()
	for b.Loop() {
		ev.Crowsnest.SpoofedFields = ev.Crowsnest.SpoofedFields[:0]
		v.Check("node_worker-3", ev)
	}
}
