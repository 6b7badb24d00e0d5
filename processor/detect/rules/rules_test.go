package rules_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/detect"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
)

// trusted is the trusted-registry list the test records assume (the
// untrusted-registry rule is silent without one); testdata/crowsnest.yml
// sets the same for `crowsnest detect --config`.
var trusted = normalize.TrustedRegistries{"registry.shop.internal"}

func newEngine(t *testing.T) (*normalize.Normalizer, *detect.Engine) {
	t.Helper()
	cfg := normalize.NewDefaultConfig()
	cfg.TrustedRegistries = trusted
	reg, err := sources.NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg, reg, normalize.WithClock(func() time.Time { return time.Unix(0, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	rules, problems, err := detect.Load(detect.LoadOptions{}, detect.BuiltinSource())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("built-in rule does not load: %v", p)
	}
	dcfg := detect.NewDefaultConfig()
	dcfg.SuppressionWindow = 0 // every record is judged on its own
	return norm, detect.NewEngine(rules, dcfg)
}

// alertsOn returns the rule ids of the alerts one raw record raises, read
// back from the JSON lines detect.Lines writes — the code `crowsnest detect
// --source SOURCE FILE` runs.
func alertsOn(t *testing.T, norm *normalize.Normalizer, eng *detect.Engine, source string, line []byte) []string {
	t.Helper()
	var out bytes.Buffer
	res, err := detect.Lines(context.Background(), bytes.NewReader(line), norm, source, eng, &out, func(n int, err error) {
		t.Errorf("normalize: %v", err)
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events == 0 {
		t.Fatalf("no event from %s", line)
	}
	var ids []string
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var a struct {
			Rule struct{ ID string } `json:"rule"`
		}
		if err := json.Unmarshal(l, &a); err != nil {
			t.Fatalf("alert line %s: %v", l, err)
		}
		ids = append(ids, a.Rule.ID)
	}
	return ids
}

// subjects maps each rule file's stem to the rule its testdata is about:
// the correlation when the file holds one, else its single rule.
func subjects(eng *detect.Engine) map[string]*detect.Rule {
	out := map[string]*detect.Rule{}
	for _, r := range eng.Rules().All() {
		stem := strings.TrimSuffix(path.Base(r.File), ".yml")
		if prev, ok := out[stem]; ok && prev.Correlation != nil {
			continue
		}
		out[stem] = r
	}
	return out
}

// TestBuiltinRulesPositiveAndNegative: every built-in rule fires on each of
// its positive records and on none of its negative ones, through
// detect.Lines and detect.MergeLines — what `crowsnest detect` runs. A correlation's testdata
// holds scenarios (positive-N/, negative-N/), each a set of NN.SOURCE.jsonl
// files merged by event time and run on a fresh engine.
func TestBuiltinRulesPositiveAndNegative(t *testing.T) {
	norm, eng := newEngine(t)
	byFile := subjects(eng)
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		r, ok := byFile[d.Name()]
		if !ok {
			t.Errorf("testdata/%s: no built-in rule of that name", d.Name())
			continue
		}
		seen[d.Name()] = true
		var pos, neg int
		if r.Correlation != nil {
			pos, neg = runScenarios(t, norm, r, filepath.Join("testdata", d.Name()))
		} else {
			pos, neg = runRecords(t, norm, eng, r, filepath.Join("testdata", d.Name()))
		}
		if pos == 0 || neg == 0 {
			t.Errorf("%s: %d positive and %d negative cases; want both", d.Name(), pos, neg)
		}
	}
	for name := range byFile {
		if !seen[name] {
			t.Errorf("built-in rule %s has no testdata/%s", name, name)
		}
	}
}

func runRecords(t *testing.T, norm *normalize.Normalizer, eng *detect.Engine, r *detect.Rule, dir string) (pos, neg int) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	for _, f := range files {
		source, kind, ok := strings.Cut(strings.TrimSuffix(filepath.Base(f), ".jsonl"), ".")
		if !ok || kind != "positive" && kind != "negative" {
			t.Errorf("%s: name it SOURCE.positive.jsonl or SOURCE.negative.jsonl", f)
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			ids := alertsOn(t, norm, eng, source, sc.Bytes())
			fired := slices.Contains(ids, r.ID)
			if kind == "positive" {
				pos++
				if !fired {
					t.Errorf("%s:%d: %s did not fire (alerts: %v)", f, n, r.File, ids)
				}
			} else {
				neg++
				if fired {
					t.Errorf("%s:%d: %s fired on a negative record", f, n, r.File)
				}
			}
		}
	}
	return pos, neg
}

func runScenarios(t *testing.T, norm *normalize.Normalizer, r *detect.Rule, dir string) (pos, neg int) {
	scenarios, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, sc := range scenarios {
		kind, _, _ := strings.Cut(filepath.Base(sc), "-")
		if kind != "positive" && kind != "negative" {
			t.Errorf("%s: name scenarios positive-N or negative-N", sc)
			continue
		}
		files, _ := filepath.Glob(filepath.Join(sc, "*.jsonl"))
		var inputs []detect.Input
		for _, f := range files {
			parts := strings.Split(filepath.Base(f), ".")
			if len(parts) != 3 {
				t.Errorf("%s: name it NN.SOURCE.jsonl", f)
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, detect.Input{Source: parts[1], Name: f, R: bytes.NewReader(data)})
		}
		_, eng := newEngine(t)
		var out bytes.Buffer
		if _, err := detect.MergeLines(context.Background(), inputs, norm, eng, &out, func(name string, line int, err error) {
			t.Errorf("%s:%d: %v", name, line, err)
		}); err != nil {
			t.Fatal(err)
		}
		fired := 0
		for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
			var a struct {
				Rule struct{ ID string } `json:"rule"`
			}
			if len(line) > 0 && json.Unmarshal(line, &a) == nil && a.Rule.ID == r.ID {
				fired++
			}
		}
		if kind == "positive" {
			pos++
			if fired != 1 {
				t.Errorf("%s: correlation %s fired %d times, want once", sc, r.File, fired)
			}
		} else {
			neg++
			if fired != 0 {
				t.Errorf("%s: correlation %s fired on a negative scenario", sc, r.File)
			}
		}
	}
	return pos, neg
}

// TestBuiltinRulesMetadata: every rule is complete enough for an analyst.
func TestBuiltinRulesMetadata(t *testing.T) {
	_, eng := newEngine(t)
	ids := map[string]bool{}
	for _, r := range eng.Rules().All() {
		c := r.Sigma
		if c.ID == "" || ids[c.ID] {
			t.Errorf("%s: missing or duplicate id", r.File)
		}
		ids[c.ID] = true
		if c.Level == "" || c.Description == "" || c.Author == "" || len(c.FalsePositives) == 0 {
			t.Errorf("%s: level, description, author and falsepositives are required", r.File)
		}
		if len(r.Tactics) == 0 {
			t.Errorf("%s: no ATT&CK tactic tag", r.File)
		}
		if len(r.Techniques) == 0 && c.Logsource.Product != "falco" && r.Standalone {
			t.Errorf("%s: no ATT&CK technique tag", r.File)
		}
		if r.Compiled != nil && len(r.Compiled.Warnings) > 0 {
			t.Errorf("%s: warnings %v", r.File, r.Compiled.Warnings)
		}
	}
	if len(ids) < 20 {
		t.Errorf("%d built-in rules", len(ids))
	}
}
