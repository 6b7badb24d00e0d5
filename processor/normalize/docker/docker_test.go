package docker_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/docker"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/corpus"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/ecsdiff"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func newNormalizer(tb testing.TB, cfg normalize.Config) *normalize.Normalizer {
	tb.Helper()
	return golden.NewNormalizer(tb, cfg, docker.NewFactory())
}

// TestGolden maps every testdata/*.input.json and compares the events with
// testdata/*.golden.json. The same cases seed FuzzDocker and feed the
// benchmarks.
func TestGolden(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.TrustedRegistries = normalize.TrustedRegistries{"docker.io/library", "registry.example.com/shop"}
	n := newNormalizer(t, cfg)
	for _, c := range golden.Cases(t, "testdata") {
		t.Run(c.Name, func(t *testing.T) {
			got := golden.Render(t, n, golden.Record(docker.Source, c.Input))
			golden.Check(t, filepath.Join("testdata", c.Name+".golden.json"), got, *update)
		})
	}
}

// FuzzDocker: no input may panic; whatever maps must encode to valid JSON
// with a header-safe id, whatever does not must be a RejectError.
func FuzzDocker(f *testing.F) {
	for _, c := range golden.Cases(f, "testdata") {
		f.Add(c.Input)
	}
	n := newNormalizer(f, normalize.NewDefaultConfig())
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev schemas.Event
		err := n.Normalize(golden.Record(docker.Source, data), &ev)
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
		if ev.Event.Action == "" || len(ev.Event.Category) != 1 || len(ev.Event.Type) != 1 {
			t.Fatalf("mapped without action or category: %+v", ev.Event)
		}
		golden.CheckNoAliasing(t, &ev)
	})
}

// TestNaturalID: the id is the object, action and time — the same event
// sent again after a reconnect (the collector resumes with since=) gets the
// same id even when its bytes differ (scope added, attributes reordered);
// any of the three changing gives another id.
func TestNaturalID(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	id := func(s string) string {
		t.Helper()
		var ev schemas.Event
		if err := n.Normalize(golden.Record(docker.Source, []byte(s)), &ev); err != nil {
			t.Fatal(err)
		}
		return ev.Event.ID
	}
	base := id(`{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"image":"a","name":"n"}},"time":1700000000,"timeNano":1700000000000000001}`)
	if got := id(`{"Actor":{"Attributes":{"name":"n","image":"a"},"ID":"abc"},"scope":"local","Type":"container","Action":"start","timeNano":1700000000000000001,"time":1700000000}`); got != base {
		t.Errorf("same event, other bytes: %s vs %s", got, base)
	}
	for _, other := range []string{
		`{"Type":"container","Action":"start","Actor":{"ID":"abd"},"time":1700000000,"timeNano":1700000000000000001}`,
		`{"Type":"container","Action":"stop","Actor":{"ID":"abc"},"time":1700000000,"timeNano":1700000000000000001}`,
		`{"Type":"container","Action":"start","Actor":{"ID":"abc"},"time":1700000000,"timeNano":1700000000000000002}`,
	} {
		if got := id(other); got == base {
			t.Errorf("%s: same id as the base event", other)
		}
	}
	if !strings.HasPrefix(base, "docker-") {
		t.Errorf("id %q", base)
	}
}

// mobyDir and cliDir are the Docker corpus (shared/corpora/SOURCES.md).
const (
	mobyDir = "docker-engine-events/moby/"
	cliDir  = "docker-engine-events/docker-cli/"
)

// TestCorpusAPIExamples maps the 24 events of the Engine API documentation
// (v1.20–1.24: legacy, transitional and current shapes): none is rejected,
// each names its object, and a container event its container.
func TestCorpusAPIExamples(t *testing.T) {
	lines := readLines(t, corpus.Path(t, mobyDir+"events_api_doc_examples.extracted.jsonl"))
	if len(lines) != 24 {
		t.Errorf("%d events, SOURCES.md promises 24", len(lines))
	}
	n := newNormalizer(t, normalize.NewDefaultConfig())
	for i, line := range lines {
		var ev schemas.Event
		if err := n.Normalize(golden.Record(docker.Source, line), &ev); err != nil {
			t.Errorf("event %d rejected: %v", i+1, err)
			continue
		}
		if ev.Timestamp.Year() < 2013 || ev.Event.Action == "" {
			t.Errorf("event %d: @timestamp %v action %q", i+1, ev.Timestamp, ev.Event.Action)
		}
		switch ev.Event.Provider {
		case "container":
			if ev.Container.ID == "" || ev.Container.Image.Name == "" {
				t.Errorf("event %d: container %q image %q", i+1, ev.Container.ID, ev.Container.Image.Name)
			}
		case "image":
			if ev.Container.Image.Name == "" || ev.Container.Image.Repository == "" {
				t.Errorf("event %d: image %+v", i+1, ev.Container.Image)
			}
		case "network":
			if ev.Container.ID == "" {
				t.Errorf("event %d: network event without its container", i+1)
			}
		default:
			t.Errorf("event %d: type %q", i+1, ev.Event.Provider)
		}
	}
}

// TestCorpusCLIGoldens maps docker/cli's recorded events and checks each
// against the text line the CLI prints for it: time, type, action, id and
// image agree.
func TestCorpusCLIGoldens(t *testing.T) {
	dir := cliDir + "cli/command/system/testdata/"
	events := readLines(t, corpus.Path(t, dir+"docker-events-json.golden"))
	texts := readLines(t, corpus.Path(t, dir+"docker-events-default.golden"))
	if len(events) != len(texts) || len(events) == 0 {
		t.Fatalf("%d events, %d text lines", len(events), len(texts))
	}
	n := newNormalizer(t, normalize.NewDefaultConfig())
	for i := range events {
		var ev schemas.Event
		if err := n.Normalize(golden.Record(docker.Source, events[i]), &ev); err != nil {
			t.Fatalf("event %d rejected: %v", i+1, err)
		}
		want := parseText(t, string(texts[i]))
		got := fmt.Sprintf("%s %s %s %s image=%s", ev.Timestamp.Format(time.RFC3339Nano), ev.Event.Provider, ev.Event.Action, ev.Container.ID, ev.Container.Image.Name)
		exp := fmt.Sprintf("%s %s %s %s image=%s", want.time.Format(time.RFC3339Nano), want.typ, want.action, want.id, want.attrs["image"])
		if got != exp {
			t.Errorf("event %d:\n got %s\nwant %s", i+1, got, exp)
		}
	}
}

// TestCorpusTextEvents rebuilds the 84 events `docker events` prints in the
// CLI documentation (containers, networks, volumes, plugins and the swarm
// objects) as the JSON the engine sent, and maps them: none is rejected, and
// each gets the type, action, category and object of its line.
func TestCorpusTextEvents(t *testing.T) {
	lines := readLines(t, corpus.Path(t, cliDir+"system_events_text_from_docs.extracted.txt"))
	if len(lines) != 84 {
		t.Errorf("%d lines, SOURCES.md promises 84", len(lines))
	}
	n := newNormalizer(t, normalize.NewDefaultConfig())
	kinds := map[string]int{}
	for i, line := range lines {
		te := parseText(t, string(line))
		raw, err := json.Marshal(map[string]any{
			"Type": te.typ, "Action": te.action,
			"Actor": map[string]any{"ID": te.id, "Attributes": te.attrs},
			"scope": "local", "time": te.time.Unix(), "timeNano": te.time.UnixNano(),
		})
		if err != nil {
			t.Fatal(err)
		}
		var ev schemas.Event
		if err := n.Normalize(golden.Record(docker.Source, raw), &ev); err != nil {
			t.Errorf("line %d rejected: %v", i+1, err)
			continue
		}
		if ev.Event.Provider != te.typ || ev.Event.Action != te.action || !ev.Timestamp.Equal(te.time) || len(ev.Event.Category) != 1 {
			t.Errorf("line %d: %s %s %v %v", i+1, ev.Event.Provider, ev.Event.Action, ev.Timestamp, ev.Event.Category)
		}
		switch te.typ {
		case "container":
			if ev.Container.ID != te.id || ev.Container.Name != te.attrs["name"] || ev.Container.Image.Name != te.attrs["image"] {
				t.Errorf("line %d: container %+v", i+1, ev.Container)
			}
			if te.action == "die" && ev.Process.ExitCode == nil {
				t.Errorf("line %d: die without exit code", i+1)
			}
		case "network", "volume":
			if ev.Container.ID != te.attrs["container"] {
				t.Errorf("line %d: container %q, want %q", i+1, ev.Container.ID, te.attrs["container"])
			}
		}
		kinds[te.typ+" "+te.action]++
	}
	t.Logf("%d events, %d type/action pairs", len(lines), len(kinds))
}

// TestElasticSample compares the event rebuilt from Elastic's Docker
// integration sample (its docker.event.* holds the engine's fields) with
// Elastic's document on the claimed fields; DIFFERENCES.md lists every
// difference and the test fails on an undocumented or stale row.
func TestElasticSample(t *testing.T) {
	b, err := os.ReadFile(corpus.Path(t, "elastic-integrations/packages/docker/data_stream/event/sample_event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Timestamp time.Time `json:"@timestamp"`
		Docker    struct {
			Event struct {
				Action string `json:"action"`
				Actor  struct {
					Attributes map[string]string `json:"attributes"`
					ID         string            `json:"id"`
				} `json:"actor"`
				From   string `json:"from"`
				ID     string `json:"id"`
				Status string `json:"status"`
				Type   string `json:"type"`
			} `json:"event"`
		} `json:"docker"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	e := doc.Docker.Event
	// The engine's message, as the transitional API sent it; the sample
	// has no time of its own, so its @timestamp stands in.
	raw, err := json.Marshal(map[string]any{
		"status": e.Status, "id": e.ID, "from": e.From, "Type": e.Type, "Action": e.Action,
		"Actor": map[string]any{"ID": e.Actor.ID, "Attributes": e.Actor.Attributes},
		"time":  doc.Timestamp.Unix(), "timeNano": doc.Timestamp.UnixNano(),
	})
	if err != nil {
		t.Fatal(err)
	}
	n := newNormalizer(t, normalize.NewDefaultConfig())
	var ev schemas.Event
	if err := n.Normalize(golden.Record(docker.Source, raw), &ev); err != nil {
		t.Fatal(err)
	}
	ours, err := ecsdiff.Flatten(ev.AppendJSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ecsdiff.Flatten(b)
	if err != nil {
		t.Fatal(err)
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
	claims := []string{"@timestamp", "event.kind", "event.action", "event.category", "event.type", "event.dataset", "event.module",
		"container", "host.name", "message", "docker.event", "agent", "service.type"}
	for _, d := range ecsdiff.Compare(ref, ours, claims) {
		if !al.Allows("image", d) {
			t.Errorf("undocumented difference from Elastic: %s", d)
		}
	}
	for _, a := range al.Unused() {
		t.Errorf("DIFFERENCES.md:%d documents %s [%s], which no longer differs", a.Line, a.Field, a.Kind)
	}
}

type textEvent struct {
	time            time.Time
	typ, action, id string
	attrs           map[string]string
}

var textLine = regexp.MustCompile(`^(\S+) (\S+) (\S+) (\S+)(?: \((.*)\))?$`)

// parseText reads one line of `docker events` text output:
// "<time> <type> <action> <id> (k=v, k=v)".
func parseText(t *testing.T, line string) textEvent {
	t.Helper()
	m := textLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("unparsable text event %q", line)
	}
	ts, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	te := textEvent{time: ts, typ: m[2], action: m[3], id: m[4], attrs: map[string]string{}}
	for kv := range strings.SplitSeq(m[5], ", ") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			te.attrs[k] = v
		}
	}
	return te
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
