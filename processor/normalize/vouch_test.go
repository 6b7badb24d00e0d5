package normalize_test

import (
	"slices"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/vouch"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// claimMapper takes host.name and orchestrator.namespace from the record, as
// the runtime mappers do.
type claimMapper struct{}

func (claimMapper) Map(rec *normalize.Record, ev *schemas.Event) error {
	ev.Host.Name = gjson.Get(rec.Text(), "host").String()
	ev.Orchestrator.Namespace = gjson.Get(rec.Text(), "ns").String()
	return nil
}

// TestSpoofedFields: the Normalizer checks every event against the
// collector of its raw subject (rec.Collector), marking or rejecting.
func TestSpoofedFields(t *testing.T) {
	tests := []struct {
		name       string
		onSpoof    vouch.Action
		collector  string
		headerNode string
		data       string
		want       []string
		reject     bool
	}{
		{"own node", vouch.Mark, "node_worker-1", "worker-1", `{"host":"worker-1","ns":"shop"}`, nil, false},
		{"claims another node", vouch.Mark, "node_worker-1", "worker-1", `{"host":"worker-2"}`, []string{vouch.FieldHostName}, false},
		{"header claims another node", vouch.Mark, "node_worker-1", "worker-9", `{"host":"worker-1"}`, []string{vouch.FieldCollectorNode}, false},
		{"sidecar claims another namespace", vouch.Mark, "sidecar_shop_web-0", "web-0", `{"ns":"kube-system"}`, []string{vouch.FieldNamespace}, false},
		{"rejected when so configured", vouch.Reject, "node_worker-1", "worker-1", `{"host":"worker-2"}`, nil, true},
		{"reject keeps vouched events", vouch.Reject, "node_worker-1", "worker-1", `{"host":"worker-1"}`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := normalize.NewDefaultConfig()
			cfg.Vouch.OnSpoof = tt.onSpoof
			cfg.Vouch.Collectors = []vouch.Binding{{Collector: "node_{node}"}, {Collector: "sidecar_{namespace}_*"}}
			reg, err := normalize.NewRegistry(cfg, normalize.Factory{Source: "procwatch", New: func(normalize.Config) (normalize.Mapper, error) { return claimMapper{}, nil }})
			if err != nil {
				t.Fatal(err)
			}
			n, err := normalize.New(cfg, reg)
			if err != nil {
				t.Fatal(err)
			}
			var ev schemas.Event
			ev.Crowsnest.SpoofedFields = append(ev.Crowsnest.SpoofedFields, "left over from the previous event")
			err = n.Normalize(&normalize.Record{Source: "procwatch", Data: []byte(tt.data), Collector: tt.collector, Node: tt.headerNode}, &ev)
			if tt.reject {
				if reason, _ := normalize.RejectReason(err); reason != normalize.ReasonSpoofed {
					t.Fatalf("Normalize = %v, want %s", err, normalize.ReasonSpoofed)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ev.Crowsnest.SpoofedFields; !slices.Equal(got, tt.want) {
				t.Errorf("spoofed_fields %v, want %v", got, tt.want)
			}
		})
	}
	bad := normalize.NewDefaultConfig()
	bad.Vouch.OnSpoof = "shrug"
	if err := bad.Validate(); err == nil {
		t.Error("vouch.on_spoof typo validated")
	}
}
