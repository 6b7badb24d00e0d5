package rules_test

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/detect"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
	"github.com/crowsnest-siem/crowsnest/schemas"
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

// alertsOn returns the rule ids of the alerts one raw record raises.
func alertsOn(t *testing.T, norm *normalize.Normalizer, eng *detect.Engine, source string, line []byte) []string {
	t.Helper()
	var ids []string
	rec := normalize.Record{Source: source, Data: line}
	var ev schemas.Event
	err := norm.NormalizeEach(&rec, &ev, func(e *schemas.Event, err error) error {
		if err != nil {
			return err
		}
		return eng.Process(e, func(a *schemas.Alert) error {
			ids = append(ids, a.Rule.ID)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("normalize: %v", err)
	}
	return ids
}

// TestBuiltinRulesPositiveAndNegative: every built-in rule fires on each of
// its positive records and on none of its negative ones, through the
// normalizer — the path `crowsnest detect` takes.
func TestBuiltinRulesPositiveAndNegative(t *testing.T) {
	norm, eng := newEngine(t)
	byFile := map[string]*detect.Rule{}
	for _, r := range eng.Rules().All() {
		byFile[strings.TrimSuffix(path.Base(r.File), ".yml")] = r
	}
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
		files, _ := filepath.Glob(filepath.Join("testdata", d.Name(), "*.jsonl"))
		var pos, neg int
		for _, f := range files {
			base := filepath.Base(f)
			source, kind, ok := strings.Cut(strings.TrimSuffix(base, ".jsonl"), ".")
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
				fired := false
				for _, id := range ids {
					fired = fired || id == r.ID
				}
				if kind == "positive" {
					pos++
					if !fired {
						t.Errorf("%s:%d: %s did not fire (alerts: %v)", f, n, d.Name(), ids)
					}
				} else {
					neg++
					if fired {
						t.Errorf("%s:%d: %s fired on a negative record", f, n, d.Name())
					}
				}
			}
		}
		if pos == 0 || neg == 0 {
			t.Errorf("%s: %d positive and %d negative records; want both", d.Name(), pos, neg)
		}
	}
	for name := range byFile {
		if !seen[name] {
			t.Errorf("built-in rule %s has no testdata/%s", name, name)
		}
	}
}

// TestBuiltinRulesMetadata: every rule is complete enough for an analyst.
func TestBuiltinRulesMetadata(t *testing.T) {
	_, eng := newEngine(t)
	ids := map[string]bool{}
	for _, r := range eng.Rules().All() {
		c := r.Compiled.Rule
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
		if len(r.Techniques) == 0 && c.Logsource.Product != "falco" {
			t.Errorf("%s: no ATT&CK technique tag", r.File)
		}
		if len(r.Compiled.Warnings) > 0 {
			t.Errorf("%s: warnings %v", r.File, r.Compiled.Warnings)
		}
	}
	if len(ids) < 20 {
		t.Errorf("%d built-in rules", len(ids))
	}
}
