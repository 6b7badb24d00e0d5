package auditd_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/auditd"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/corpus"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/ecsdiff"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

const inputSuffix = ".input.log"

func newNormalizer(tb testing.TB, cfg normalize.Config) *normalize.Normalizer {
	tb.Helper()
	return golden.NewNormalizer(tb, cfg, auditd.NewFactory())
}

// TestGolden maps every testdata/*.input.log (one audit event: its lines)
// and compares the events with testdata/*.golden.json. The same cases seed
// FuzzAuditd and feed the benchmarks.
func TestGolden(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	for _, c := range golden.CasesWith(t, "testdata", inputSuffix) {
		t.Run(c.Name, func(t *testing.T) {
			got := golden.Render(t, n, golden.Record(auditd.Source, c.Input))
			golden.Check(t, filepath.Join("testdata", c.Name+".golden.json"), got, *update)
		})
	}
}

// FuzzAuditd: no input may panic; whatever maps must encode to valid JSON
// with a header-safe id, whatever does not must be a RejectError.
func FuzzAuditd(f *testing.F) {
	for _, c := range golden.CasesWith(f, "testdata", inputSuffix) {
		f.Add(c.Input)
	}
	n := newNormalizer(f, normalize.NewDefaultConfig())
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev schemas.Event
		err := n.Normalize(golden.Record(auditd.Source, data), &ev)
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

// TestNaturalID: node, time and serial identify an event; the collector's
// node stands in when auditd wrote none.
func TestNaturalID(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	id := func(node, line string) string {
		t.Helper()
		rec := golden.Record(auditd.Source, []byte(line))
		rec.Node = node
		var ev schemas.Event
		if err := n.Normalize(rec, &ev); err != nil {
			t.Fatal(err)
		}
		return ev.Event.ID
	}
	const line = `type=USER_LOGIN msg=audit(1773133000.001:101): pid=20 uid=0 auid=1000 ses=2 msg='op=login id=1000 exe="/usr/sbin/sshd" hostname=? addr=203.0.113.9 terminal=ssh res=success'`
	a := id("web-1", line)
	if b := id("", "node=web-1 "+line); b != a {
		t.Errorf("node= prefix and collector node differ: %s %s", a, b)
	}
	if b := id("web-1", strings.Replace(line, "pid=20", "pid=21", 1)); b != a {
		t.Errorf("same serial and time, other content: %s %s (auditd's identity is node, time, serial)", a, b)
	}
	for _, other := range []string{id("web-2", line), id("web-1", strings.Replace(line, ":101)", ":102)", 1)), id("web-1", strings.Replace(line, ".001:", ".002:", 1))} {
		if other == a {
			t.Errorf("different event, same id %s", a)
		}
	}
	if !strings.HasPrefix(a, "auditd-") {
		t.Errorf("id %q", a)
	}
}

// TestConcurrent maps every golden input from several goroutines (go-libaudit
// shares its normalization tables between calls).
func TestConcurrent(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	cases := golden.CasesWith(t, "testdata", inputSuffix)
	want := make([]string, len(cases))
	for i, c := range cases {
		var ev schemas.Event
		if err := n.Normalize(golden.Record(auditd.Source, c.Input), &ev); err == nil {
			want[i] = string(ev.AppendJSON(nil))
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			var ev schemas.Event
			for range 50 {
				for i, c := range cases {
					got := ""
					if err := n.Normalize(golden.Record(auditd.Source, c.Input), &ev); err == nil {
						got = string(ev.AppendJSON(nil))
					}
					if got != want[i] {
						t.Errorf("%s differs under concurrency", c.Name)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

const libauditDir = "elastic-go-libaudit/aucoalesce/testdata"

// libauditEvent is the part of go-libaudit's golden output we compare.
type libauditEvent struct {
	TestName string `json:"test_name"`
	Event    struct {
		Timestamp  string   `json:"@timestamp"`
		RecordType string   `json:"record_type"`
		Result     string   `json:"result"`
		Tags       []string `json:"tags"`
		Summary    struct {
			Action string `json:"action"`
		} `json:"summary"`
		Process struct {
			PID, PPID, Name, Exe, CWD string
			Args                      []string
		} `json:"process"`
		File *struct {
			Path, Mode string
		} `json:"file"`
		Source      *struct{ IP, Port string }  `json:"source"`
		Destination *struct{ IP, Port string }  `json:"destination"`
		Network     *struct{ Direction string } `json:"network"`
		ECS         struct {
			Event struct {
				Kind     string   `json:"kind"`
				Category []string `json:"category"`
				Type     []string `json:"type"`
				Outcome  string   `json:"outcome"`
			} `json:"event"`
			User struct {
				ID, Name  string
				Effective struct{ ID, Name string } `json:"effective"`
				Target    struct{ ID, Name string } `json:"target"`
			} `json:"user"`
			Group struct{ ID, Name string } `json:"group"`
		} `json:"ecs"`
	} `json:"event"`
}

// reference writes go-libaudit's golden event under the ECS names Auditbeat
// gives them, flattened like ecsdiff.Flatten.
func (e *libauditEvent) reference() map[string]any {
	ref := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			ref[k] = v
		}
	}
	list := func(k string, v []string) {
		if len(v) > 0 {
			a := make([]any, len(v))
			for i, s := range v {
				a[i] = s
			}
			ref[k] = a
		}
	}
	num := func(k, v string) {
		if n, err := strconv.ParseFloat(v, 64); err == nil && n != 0 {
			ref[k] = n
		}
	}
	ev := &e.Event
	set("event.kind", ev.ECS.Event.Kind)
	list("event.category", ev.ECS.Event.Category)
	list("event.type", ev.ECS.Event.Type)
	switch outcome := ev.ECS.Event.Outcome; {
	case outcome != "":
		set("event.outcome", outcome)
	case ev.Result == "fail":
		set("event.outcome", "failure")
	default:
		set("event.outcome", ev.Result)
	}
	set("event.action", ev.Summary.Action)
	list("tags", ev.Tags)
	set("user.id", ev.ECS.User.ID)
	set("user.name", ev.ECS.User.Name)
	set("user.effective.id", ev.ECS.User.Effective.ID)
	set("user.effective.name", ev.ECS.User.Effective.Name)
	set("user.target.id", ev.ECS.User.Target.ID)
	set("user.target.name", ev.ECS.User.Target.Name)
	set("group.id", ev.ECS.Group.ID)
	set("group.name", ev.ECS.Group.Name)
	num("process.pid", ev.Process.PID)
	num("process.parent.pid", ev.Process.PPID)
	set("process.name", ev.Process.Name)
	set("process.executable", ev.Process.Exe)
	set("process.working_directory", ev.Process.CWD)
	list("process.args", ev.Process.Args)
	if f := ev.File; f != nil {
		set("file.path", f.Path)
		set("file.mode", f.Mode)
	}
	if a := ev.Source; a != nil {
		set("source.ip", a.IP)
		num("source.port", a.Port)
	}
	if a := ev.Destination; a != nil {
		set("destination.ip", a.IP)
		num("destination.port", a.Port)
	}
	if n := ev.Network; n != nil && n.Direction != "unknown" {
		set("network.direction", n.Direction)
	}
	return ref
}

// claims are the fields where we claim to match go-libaudit's output.
var claims = []string{
	"event.kind", "event.category", "event.type", "event.outcome", "event.action", "tags",
	"user.id", "user.name", "user.effective", "user.target", "group",
	"process.pid", "process.parent.pid", "process.name", "process.executable", "process.working_directory", "process.args",
	"file.path", "file.mode", "source.ip", "source.port", "destination.ip", "destination.port", "network.direction",
}

// TestLibauditGolden maps the 48 events of go-libaudit's coalescing tests
// (RHEL 7, Ubuntu 16.04–24.04, events from the wild) and compares each with
// go-libaudit's golden output, in ECS terms, on the claimed fields. Every
// difference must be a row of DIFFERENCES.md, and every row must occur.
func TestLibauditGolden(t *testing.T) {
	dir := corpus.Path(t, libauditDir)
	f, err := os.Open("DIFFERENCES.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	al, err := ecsdiff.ParseAllowlist(f)
	if err != nil {
		t.Fatal(err)
	}
	inputs, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	n := newNormalizer(t, normalize.NewDefaultConfig())
	total := 0
	classes := map[string]int{}
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		var tests struct {
			Tests map[string]string `yaml:"tests"`
		}
		if err := yaml.Unmarshal(b, &tests); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		gb, err := os.ReadFile(strings.TrimSuffix(in, ".yaml") + ".json.golden")
		if err != nil {
			t.Fatal(err)
		}
		var goldens []libauditEvent
		if err := json.Unmarshal(gb, &goldens); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		for _, g := range goldens {
			raw, ok := tests.Tests[g.TestName]
			if !ok {
				t.Errorf("%s: golden %q has no input", filepath.Base(in), g.TestName)
				continue
			}
			total++
			name := filepath.Base(in) + ": " + g.TestName
			var ev schemas.Event
			if err := n.Normalize(golden.Record(auditd.Source, []byte(strings.TrimSpace(raw))), &ev); err != nil {
				t.Errorf("%s: rejected: %v", name, err)
				continue
			}
			classes[fmt.Sprintf("%d/%d", ev.OCSF.ClassUID, ev.OCSF.ActivityID)]++
			if want, err := time.Parse(time.RFC3339Nano, g.Event.Timestamp); err != nil || !ev.Timestamp.Equal(want) {
				t.Errorf("%s: @timestamp %v, want %s", name, ev.Timestamp, g.Event.Timestamp)
			}
			ours, err := ecsdiff.Flatten(ev.AppendJSON(nil))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ecsdiff.Compare(g.reference(), ours, claims) {
				if !al.Allows(g.Event.RecordType, d) {
					t.Errorf("%s: undocumented difference from go-libaudit: %s", name, d)
				}
			}
		}
	}
	if total != 48 {
		t.Errorf("compared %d events, SOURCES.md promises 48", total)
	}
	for _, a := range al.Unused() {
		t.Errorf("DIFFERENCES.md:%d documents %s [%s], which no longer differs", a.Line, a.Field, a.Kind)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range classes {
			if !yield(k) {
				return
			}
		}
	})
	t.Logf("compared %d events; OCSF class/activity: %v", total, keys)
}

// A record with more fields than max_map_entries keeps the same ones in
// auditd.data every time (map order must not choose), and says it was cut.
func TestDataTruncationIsStable(t *testing.T) {
	var b strings.Builder
	b.WriteString(`type=USER_CMD msg=audit(1773133000.001:101): pid=20 uid=0 auid=1000 ses=2 msg='cwd="/" cmd=6964 res=success`)
	for i := range 100 {
		fmt.Fprintf(&b, " f%03d=%d", i, i)
	}
	b.WriteString("'")
	n := newNormalizer(t, normalize.NewDefaultConfig())
	var first string
	for i := range 20 {
		var ev schemas.Event
		if err := n.Normalize(golden.Record(auditd.Source, []byte(b.String())), &ev); err != nil {
			t.Fatal(err)
		}
		if len(ev.Auditd.Data) != normalize.NewDefaultConfig().MaxMapEntries || !ev.Crowsnest.Truncated {
			t.Fatalf("auditd.data has %d keys, truncated %t; want %d and true", len(ev.Auditd.Data), ev.Crowsnest.Truncated, normalize.NewDefaultConfig().MaxMapEntries)
		}
		got := fmt.Sprint(ev.Auditd.Data) // fmt prints maps sorted
		if i == 0 {
			first = got
		} else if got != first {
			t.Fatalf("run %d kept other keys:\n%s\nfirst:\n%s", i, got, first)
		}
	}
}
