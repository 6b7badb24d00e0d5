package topology_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

func TestKeyToken(t *testing.T) {
	tests := []struct{ entity, want string }{
		{"", "cbf29ce484222325"}, // FNV-1a 64 offset basis
		{"ns/kube-system", "00297f183d775640"},
		{"user/system:admin", KeyTokenOf(t, "user/system:admin")},
	}
	for _, tt := range tests {
		got := topology.KeyToken(tt.entity)
		if got != tt.want {
			t.Errorf("KeyToken(%q) = %q, want %q", tt.entity, got, tt.want)
		}
		if err := topology.ValidateToken(got); err != nil || len(got) != 16 {
			t.Errorf("KeyToken(%q) = %q is not a 16-digit token: %v", tt.entity, got, err)
		}
	}
	// User data never reaches the subject, however hostile.
	for _, e := range []string{"a.b", "*", ">", "a b", "\x00", strings.Repeat("x", 10000)} {
		if err := topology.ValidateToken(topology.KeyToken(e)); err != nil {
			t.Errorf("KeyToken(%q): %v", e, err)
		}
	}
}

// KeyTokenOf checks determinism: the same entity, the same token.
func KeyTokenOf(t *testing.T, e string) string {
	t.Helper()
	a, b := topology.KeyToken(e), topology.KeyToken(e)
	if a != b {
		t.Fatalf("KeyToken(%q) not deterministic: %s, %s", e, a, b)
	}
	return a
}

func TestParseRawStored(t *testing.T) {
	tests := []struct {
		subject string
		want    topology.RawStored
		ok      bool
	}{
		{"crowsnest.raw.falco.3.node-1.00297f183d775640", topology.RawStored{Source: "falco", Partition: 3, Collector: "node-1", Key: "00297f183d775640"}, true},
		{"crowsnest.raw.k8s_audit.0.c.k", topology.RawStored{Source: "k8s_audit", Partition: 0, Collector: "c", Key: "k"}, true},
		{"crowsnest.raw.falco.node-1.k", topology.RawStored{}, false},     // as published, before the transform
		{"crowsnest.raw.falco.03.node-1.k", topology.RawStored{}, false},  // not the server's spelling
		{"crowsnest.raw.falco.-1.node-1.k", topology.RawStored{}, false},  // negative
		{"crowsnest.raw.falco.256.node-1.k", topology.RawStored{}, false}, // beyond MaxPartitions
		{"crowsnest.raw.syslog.1.node-1.k", topology.RawStored{}, false},  // unknown source
		{"crowsnest.raw.falco.1.node-1.k.extra", topology.RawStored{}, false},
		{"crowsnest.events.falco", topology.RawStored{}, false},
		{"", topology.RawStored{}, false},
	}
	for _, tt := range tests {
		got, ok := topology.ParseRawStored(tt.subject)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRawStored(%q) = %+v, %v; want %+v, %v", tt.subject, got, ok, tt.want, tt.ok)
		}
	}
}

// The server inserts the partition: every record of one key lands in one
// partition whatever collector and source sent it, the partitions filter the
// stream without overlap, and keys spread over the partitions.
func TestRawStreamsPartitionByKey(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := topology.NewDefaultConfig()
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	const keys = 64
	partOf := map[string]int{} // key token -> partition
	used := map[int]bool{}
	for _, src := range []string{topology.SourceK8sAudit, topology.SourceFalco} {
		stream, _ := topology.RawStream(src)
		for _, coll := range []string{"c1", "c2"} {
			for k := range keys {
				key := topology.KeyToken(fmt.Sprintf("ns/n%d", k))
				subj, err := topology.RawSubject(src, coll, key)
				if err != nil {
					t.Fatal(err)
				}
				ack, err := js.Publish(ctx, subj, []byte("x"))
				if err != nil {
					t.Fatalf("publish %s: %v", subj, err)
				}
				s, err := js.Stream(ctx, stream)
				if err != nil {
					t.Fatal(err)
				}
				m, err := s.GetMsg(ctx, ack.Sequence)
				if err != nil {
					t.Fatal(err)
				}
				got, ok := topology.ParseRawStored(m.Subject)
				if !ok || got.Source != src || got.Collector != coll || got.Key != key || got.Partition >= cfg.Partitions {
					t.Fatalf("stored as %s (%+v, %v)", m.Subject, got, ok)
				}
				if p, seen := partOf[key]; seen && p != got.Partition {
					t.Fatalf("key %s in partition %d and %d", key, p, got.Partition)
				}
				partOf[key] = got.Partition
				used[got.Partition] = true
			}
		}
	}
	if len(used) < cfg.Partitions/2 {
		t.Errorf("%d keys fell in only %d of %d partitions", keys, len(used), cfg.Partitions)
	}
	// One consumer per partition on the work queue: the filters do not
	// overlap, and together they see every record once.
	total := 0
	for _, d := range topology.ProcessorConsumers(cfg.Partitions, cfg.Consumers.Processor) {
		if d.Stream != "CROWSNEST_RAW_FALCO" {
			continue
		}
		c, err := topology.EnsureConsumer(ctx, js, d)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += int(info.NumPending)
	}
	if total != 2*keys {
		t.Errorf("partition consumers see %d records, want %d", total, 2*keys)
	}
	// A collector cannot pick a partition: the stored form is not captured.
	if _, err := js.Publish(ctx, "crowsnest.raw.falco.1.c1.k", []byte("x")); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("publish to a partitioned subject = %v, want no stream", err)
	}
}

func TestEnsureRefusesPartitionChange(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := topology.NewDefaultConfig()
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Partitions = 16
	err := topology.Ensure(ctx, js, cfg)
	if !errors.Is(err, topology.ErrIncompatible) {
		t.Fatalf("Ensure with 16 partitions over 8 = %v, want ErrIncompatible", err)
	}
	var n int
	for _, e := range flatten(err) {
		var ie *topology.IncompatibleError
		if !errors.As(e, &ie) {
			t.Errorf("unexpected error %v", e)
			continue
		}
		n++
		if ie.Field != "partitions" || ie.Existing != "8" || ie.Wanted != "16" || !strings.Contains(ie.Fix, "topology.partitions back to 8") {
			t.Errorf("incompatible %+v", ie)
		}
	}
	if n != len(topology.Sources()) {
		t.Errorf("%d raw streams refused, want %d", n, len(topology.Sources()))
	}
	// Nothing changed: the raw streams still have 8 partitions.
	s, err := js.Stream(ctx, "CROWSNEST_RAW_DOCKER")
	if err != nil {
		t.Fatal(err)
	}
	if d := s.CachedInfo().Config.SubjectTransform.Destination; !strings.Contains(d, "partition(8,2)") {
		t.Errorf("transform changed to %s", d)
	}
	cfg.Partitions = 8
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("Ensure back at 8: %v", err)
	}
}
