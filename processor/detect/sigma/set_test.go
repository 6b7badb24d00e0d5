package sigma

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// sampleDir is the bundled replay sample; tests read it in place.
const sampleDir = "../../../collectors/replay/samples"

// testNormalizer is every source's mapper with the default configuration
// and a fixed clock (event.ingested), as the processor runs them.
func testNormalizer(t testing.TB) *normalize.Normalizer {
	t.Helper()
	cfg := normalize.NewDefaultConfig()
	reg, err := sources.NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg, reg, normalize.WithClock(func() time.Time { return time.Unix(0, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	return norm
}

// sampleEvents normalizes the bundled samples, one fresh Event per record.
func sampleEvents(t testing.TB) []*schemas.Event {
	t.Helper()
	norm := testNormalizer(t)
	var out []*schemas.Event
	for _, src := range []string{"k8s_audit", "falco", "tetragon"} {
		data, err := os.ReadFile(filepath.Join(sampleDir, src+".jsonl"))
		if err != nil {
			t.Skipf("bundled sample not readable: %v", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			ev := &schemas.Event{}
			rec := normalize.Record{Source: src, Data: append([]byte(nil), sc.Bytes()...)}
			if err := norm.Normalize(&rec, ev); err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			out = append(out, ev)
		}
	}
	return out
}

// auditdEvents normalizes the coalesced auditd events of
// TestSigmaHQAuditdRulesFire (testdata/auditd), which reach the auditd rules
// the samples do not.
func auditdEvents(t testing.TB) []*schemas.Event {
	t.Helper()
	norm := testNormalizer(t)
	var out []*schemas.Event
	logs, _ := filepath.Glob(filepath.Join("testdata", "auditd", "*.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ev := &schemas.Event{}
		if err := norm.Normalize(&normalize.Record{Source: "auditd", Node: "node-1", Data: data}, ev); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, ev)
	}
	return out
}

// TestSetAgreesWithBruteForce: the index (sources, where, literal buckets)
// never changes which rules match, over every loadable SigmaHQ Kubernetes
// and Linux rule and the bundled sample.
func TestSetAgreesWithBruteForce(t *testing.T) {
	compiled := compileCorpus(t)
	events := append(sampleEvents(t), auditdEvents(t)...)
	set := NewSet(compiled)
	total := 0
	for _, e := range events {
		got := map[*Compiled]bool{}
		prev := -1
		set.Match(e, func(c *Compiled) {
			if got[c] {
				t.Fatalf("%s reported twice", c.Rule.ID)
			}
			if c.order < prev && c.Logsource == compiled[prev].Logsource {
				t.Fatalf("rules out of order")
			}
			prev = c.order
			got[c] = true
		})
		for _, c := range compiled {
			if want := bruteForce(c, e); got[c] != want {
				t.Errorf("event %s, rule %s: set says %v, brute force %v", e.Event.ID, c.Rule.ID, got[c], want)
			}
		}
		total += len(got)
	}
	t.Logf("%d rules × %d events: %d matches", len(compiled), len(events), total)
}

func compileCorpus(t testing.TB) []*Compiled {
	t.Helper()
	m, err := DefaultMapping()
	if err != nil {
		t.Fatal(err)
	}
	var out []*Compiled
	for _, res := range loadCorpus(t, "rules/application/kubernetes", "rules/linux") {
		if res.construct != "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(sigmaHQ, res.path))
		if err != nil {
			t.Fatal(err)
		}
		rules, err := ParseAll(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if c, err := Compile(r, Options{Mapping: m}); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// TestMatchDoesNotAllocate: the hot path allocates nothing per event.
func TestMatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	compiled := compileCorpus(t)
	set := NewSet(compiled)
	events := append(sampleEvents(t), auditdEvents(t)...)
	n := 0
	allocs := testing.AllocsPerRun(20, func() {
		for _, e := range events {
			set.Match(e, func(*Compiled) { n++ })
		}
	})
	// Rules reading JSON request objects or dates may allocate; none of
	// the loadable SigmaHQ rules does on the sample.
	if allocs > 0 {
		t.Errorf("%.1f allocations per pass over %d events", allocs, len(events))
	}
}

func BenchmarkSetSigmaHQ(b *testing.B) {
	compiled := compileCorpus(b)
	set := NewSet(compiled)
	events := sampleEvents(b)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		set.Match(events[i%len(events)], func(*Compiled) { n++ })
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
