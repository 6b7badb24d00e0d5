package detect

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// The corpora: read in place, never copied (see ../shared/corpora/SOURCES.md).
const (
	corpusSigmaHQ = "../../../shared/corpora/sigmahq"
	corpusHkerma  = "../../../shared/corpora/hkerma-k8s-audit/audit-logs.reconstructed.jsonl"
	sampleDir     = "../../collectors/replay/samples"
)

type rawRecord struct {
	source string
	data   []byte
}

func readLines(tb testing.TB, path, source string, limit int) []rawRecord {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Skipf("%s not readable (a clone without ../shared?): %v", path, err)
	}
	var out []rawRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() && (limit <= 0 || len(out) < limit) {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, rawRecord{source, append([]byte(nil), line...)})
		}
	}
	return out
}

// workloads: the bundled sample (an attack story: one event in four
// alerts) and 16 563 real kube-apiserver records (hkerma, CC BY 4.0,
// Kermabon-Bobinnec et al., IEEE TDSC 2024), benign cluster traffic.
func benchWorkloads(b *testing.B) map[string][]rawRecord {
	sample := readLines(b, filepath.Join(sampleDir, "k8s_audit.jsonl"), "k8s_audit", 0)
	sample = append(sample, readLines(b, filepath.Join(sampleDir, "falco.jsonl"), "falco", 0)...)
	sample = append(sample, readLines(b, filepath.Join(sampleDir, "tetragon.jsonl"), "tetragon", 0)...)
	return map[string][]rawRecord{
		"sample": sample,
		"hkerma": readLines(b, corpusHkerma, "k8s_audit", 0),
	}
}

func benchNormalizer(b *testing.B) *normalize.Normalizer {
	cfg := normalize.NewDefaultConfig()
	cfg.TrustedRegistries = normalize.TrustedRegistries{"registry.shop.internal"}
	reg, err := sources.NewRegistry(cfg)
	if err != nil {
		b.Fatal(err)
	}
	n, err := normalize.New(cfg, reg)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func benchEngine(b *testing.B, withSigmaHQ bool) *Engine {
	return benchEngineClock(b, withSigmaHQ, func() time.Time { return time.Unix(0, 0) })
}

// benchEngineClock is benchEngine with the processor clock now.
func benchEngineClock(b *testing.B, withSigmaHQ bool, now func() time.Time) *Engine {
	srcs := []Source{BuiltinSource()}
	if withSigmaHQ {
		if _, err := os.Stat(corpusSigmaHQ); err != nil {
			b.Skipf("SigmaHQ corpus not found: %v", err)
		}
		for _, d := range []string{"rules/application/kubernetes", "rules/linux"} {
			srcs = append(srcs, DirSource(filepath.Join(corpusSigmaHQ, d)))
		}
	}
	rules, _, err := Load(LoadOptions{}, srcs...)
	if err != nil {
		b.Fatal(err)
	}
	return NewEngine(rules, NewDefaultConfig(), WithClock(now))
}

// BenchmarkPipelineStages measures, per core, normalization alone and
// normalization plus detection with the built-in pack and with the
// built-in pack plus every loadable SigmaHQ Kubernetes and Linux rule.
// Alerts are encoded as the pipeline does. Run with -cpu 1.
func BenchmarkPipelineStages(b *testing.B) {
	norm := benchNormalizer(b)
	for name, recs := range benchWorkloads(b) {
		for _, mode := range []string{"normalize", "builtin", "builtin+sigmahq"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				var eng *Engine
				switch mode {
				case "builtin":
					eng = benchEngine(b, false)
				case "builtin+sigmahq":
					eng = benchEngine(b, true)
				}
				var (
					ev     schemas.Event
					buf    []byte
					alerts int
				)
				emitAlert := func(a *schemas.Alert) error {
					buf = a.AppendJSON(buf[:0])
					alerts++
					return nil
				}
				emit := func(e *schemas.Event, err error) error {
					if err != nil {
						return nil
					}
					buf = e.AppendJSON(buf[:0])
					if eng != nil {
						return eng.Process(context.Background(), e, emitAlert)
					}
					return nil
				}
				b.ReportAllocs()
				i := 0
				cpu0 := cpuTime()
				for b.Loop() {
					r := recs[i%len(recs)]
					i++
					rec := normalize.Record{Source: r.source, Data: r.data}
					_ = norm.NormalizeEach(&rec, &ev, emit)
				}
				b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "events/s")
				if cpu := cpuTime() - cpu0; cpu > 0 {
					b.ReportMetric(float64(i)/cpu.Seconds(), "events/CPU-s")
				}
				b.ReportMetric(float64(alerts)/float64(i), "alerts/event")
			})
		}
	}
}
