package falco_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/falco"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/corpus"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/ecsdiff"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func newNormalizer(tb testing.TB, cfg normalize.Config) *normalize.Normalizer {
	tb.Helper()
	return golden.NewNormalizer(tb, cfg, falco.NewFactory())
}

// TestGolden maps every testdata/*.input.json and compares the events with
// testdata/*.golden.json. The same cases seed FuzzFalco and feed the
// benchmarks.
func TestGolden(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.TrustedRegistries = normalize.TrustedRegistries{"docker.io/library", "registry.example.com/shop"}
	n := newNormalizer(t, cfg)
	for _, c := range golden.Cases(t, "testdata") {
		t.Run(c.Name, func(t *testing.T) {
			got := golden.Render(t, n, golden.Record(falco.Source, c.Input))
			golden.Check(t, filepath.Join("testdata", c.Name+".golden.json"), got, *update)
		})
	}
}

// FuzzFalco: no input may panic; whatever maps must encode to valid JSON
// with a header-safe id, whatever does not must be a RejectError.
func FuzzFalco(f *testing.F) {
	for _, c := range golden.Cases(f, "testdata") {
		f.Add(c.Input)
	}
	n := newNormalizer(f, normalize.NewDefaultConfig())
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev schemas.Event
		err := n.Normalize(golden.Record(falco.Source, data), &ev)
		if err != nil {
			if _, ok := normalize.RejectReason(err); !ok {
				t.Fatalf("error is not a RejectError: %v", err)
			}
			return
		}
		if out := ev.AppendJSON(nil); !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		if len(ev.Event.ID) == 0 || len(ev.Event.ID) > 128 {
			t.Fatalf("bad event.id %q", ev.Event.ID)
		}
		golden.CheckNoAliasing(t, &ev)
	})
}

// elasticClaims are the fields where we claim to match Elastic's Falco
// integration. Every difference must be documented in DIFFERENCES.md, and
// every documented difference must still occur.
var elasticClaims = []string{
	"@timestamp",
	"event.kind", "event.provider", "event.outcome", "event.category", "event.type", "event.severity", "event.original",
	"container.id", "container.name", "container.runtime", "container.image.name", "container.image.tag",
	"container.image.hash.all", "container.security_context.privileged",
	"process.pid", "process.name", "process.executable", "process.command_line", "process.args",
	"process.working_directory", "process.start", "process.tty",
	"process.parent.pid", "process.parent.name", "process.parent.executable", "process.parent.command_line",
	"process.user.id", "process.user.name", "process.group.id",
	"user.name", "user.id",
	"file.path", "file.name", "file.directory",
	"source.ip", "source.port", "destination.ip", "destination.port", "destination.domain",
	"host.hostname", "host.name", "host.ip",
	"orchestrator.type", "orchestrator.namespace", "orchestrator.resource.type", "orchestrator.resource.name",
	"orchestrator.resource.label",
	"related.hosts", "related.user", "related.ip",
	"rule.name", "rule.id",
}

const elasticDir = "elastic-integrations/packages/falco/data_stream/falco_alerts/_dev/test/pipeline/"

// TestElasticExpected maps the 17 real alerts of Elastic's Falco test log and
// compares each event with Elastic's expected document on the claimed fields.
func TestElasticExpected(t *testing.T) {
	lines := readLines(t, corpus.Path(t, elasticDir+"test-falco.log"))
	expected := readExpected(t, corpus.Path(t, elasticDir+"test-falco.log-expected.json"))
	if len(lines) != len(expected) {
		t.Fatalf("%d lines, %d expected documents", len(lines), len(expected))
	}
	f, err := os.Open("DIFFERENCES.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	al, err := ecsdiff.ParseAllowlist(f)
	if err != nil {
		t.Fatal(err)
	}
	n := newNormalizer(t, normalize.NewDefaultConfig())
	for i, line := range lines {
		var ev schemas.Event
		if err := n.Normalize(&normalize.Record{Source: falco.Source, Data: line}, &ev); err != nil {
			t.Errorf("line %d: rejected: %v", i+1, err)
			continue
		}
		ours, err := ecsdiff.Flatten(ev.AppendJSON(nil))
		if err != nil {
			t.Fatal(err)
		}
		ref, err := ecsdiff.Flatten(expected[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ecsdiff.Compare(ref, ours, elasticClaims) {
			if !al.Allows("all", d) {
				t.Errorf("line %d: undocumented difference from Elastic: %s", i+1, d)
			}
		}
	}
	for _, a := range al.Unused() {
		t.Errorf("DIFFERENCES.md:%d documents %s [%s], which no longer differs", a.Line, a.Field, a.Kind)
	}
	t.Logf("compared %d documents on %d claimed fields; %d documented differences", len(lines), len(elasticClaims), al.Len())
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			out = append(out, append([]byte(nil), l...))
		}
	}
	return out
}

func readExpected(t *testing.T, path string) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Expected []json.RawMessage `json:"expected"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v.Expected
}
