package sigma

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sigmaHQ is the SigmaHQ corpus (DRL 1.1): read in place, never copied.
const sigmaHQ = "../../../../shared/corpora/sigmahq"

// LoadResult is the outcome of loading one SigmaHQ rule.
type loadResult struct {
	path      string // relative to the corpus
	id        string
	construct string // "" when the rule compiled
	reason    string
	warnings  []string
}

func loadCorpus(t testing.TB, dirs ...string) []loadResult {
	t.Helper()
	if _, err := os.Stat(sigmaHQ); err != nil {
		t.Skipf("SigmaHQ corpus not found at %s (a clone without ../shared): %v", sigmaHQ, err)
	}
	m, err := DefaultMapping()
	if err != nil {
		t.Fatal(err)
	}
	var out []loadResult
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(sigmaHQ, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yml") {
				return err
			}
			rel, _ := filepath.Rel(sigmaHQ, path)
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rules, err := ParseAll(data)
			if err != nil {
				out = append(out, loadResult{path: rel, construct: "parse", reason: err.Error()})
				return nil
			}
			for _, r := range rules {
				res := loadResult{path: rel, id: r.ID}
				c, err := Compile(r, Options{Mapping: m})
				var ue *UnsupportedError
				switch {
				case errors.As(err, &ue):
					res.construct, res.reason = ue.Construct, err.Error()
				case err != nil:
					res.construct, res.reason = "invalid", err.Error()
				default:
					res.warnings = c.Warnings
				}
				out = append(out, res)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestSigmaHQKubernetesAndLinux: every SigmaHQ Kubernetes and Linux rule
// parses; the share that compiles is reported, and every rule that does
// not names its construct (none is skipped silently).
func TestSigmaHQKubernetesAndLinux(t *testing.T) {
	res := loadCorpus(t, "rules/application/kubernetes", "rules/linux")
	ok := 0
	byConstruct := map[string]int{}
	for _, r := range res {
		if r.construct == "parse" {
			t.Errorf("%s: does not parse: %s", r.path, r.reason)
		}
		if r.construct == "invalid" {
			t.Errorf("%s (%s): rejected as invalid: %s", r.path, r.id, r.reason)
		}
		if r.construct == "" {
			ok++
			continue
		}
		byConstruct[r.construct]++
	}
	t.Logf("%d of %d rules compile (%.1f%%); unsupported by construct: %v", ok, len(res), 100*float64(ok)/float64(len(res)), byConstruct)
	if len(res) < 200 {
		t.Fatalf("only %d rules found", len(res))
	}
	if os.Getenv("SIGMAHQ_REPORT") != "" {
		writeReport(t, os.Getenv("SIGMAHQ_REPORT"), res)
	}
}

// TestSigmaHQAllRulesParse: the whole corpus goes through the parser and
// compiler without a panic, and every failure has a reason.
func TestSigmaHQAllRulesParse(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("whole corpus: skipped in -short and under -race (the Kubernetes and Linux test covers the engine)")
	}
	res := loadCorpus(t, "rules", "rules-emerging-threats", "rules-threat-hunting", "rules-compliance", "rules-placeholder")
	parseFail := 0
	for _, r := range res {
		if r.construct != "" && r.reason == "" {
			t.Errorf("%s: failure without a reason", r.path)
		}
		if r.construct == "parse" {
			parseFail++
			t.Logf("%s: %s", r.path, r.reason)
		}
	}
	t.Logf("%d rules, %d do not parse", len(res), parseFail)
	if parseFail > 0 {
		t.Errorf("%d SigmaHQ rules do not parse", parseFail)
	}
}

func writeReport(t *testing.T, path string, res []loadResult) {
	var b strings.Builder
	ok := 0
	for _, r := range res {
		if r.construct == "" {
			ok++
		}
	}
	fmt.Fprintf(&b, "%d of %d rules compile (%.1f%%).\n\n| rule file | id | construct | reason |\n|---|---|---|---|\n", ok, len(res), 100*float64(ok)/float64(len(res)))
	slices.SortFunc(res, func(a, b loadResult) int { return strings.Compare(a.path, b.path) })
	for _, r := range res {
		if r.construct == "" && len(r.warnings) == 0 {
			continue
		}
		construct, reason := r.construct, r.reason
		if construct == "" {
			construct, reason = "loads with warning", strings.Join(r.warnings, "; ")
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", filepath.Base(r.path), r.id, construct, strings.ReplaceAll(reason, "|", "\\|"))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSigmaHQConstructs compiles every SigmaHQ rule, whatever its
// logsource, against a mapping that accepts every logsource and puts every
// field under a map (labels.<name>): what remains unsupported is the Sigma
// constructs themselves (a regular expression RE2 cannot run, say), each
// named with its rule.
func TestSigmaHQConstructs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("whole corpus: skipped in -short and under -race")
	}
	if _, err := os.Stat(sigmaHQ); err != nil {
		t.Skipf("SigmaHQ corpus not found at %s: %v", sigmaHQ, err)
	}
	m := &Mapping{Keywords: []string{"message"}}
	seen := map[LogsourceMatch]bool{}
	var rules []*Rule
	var paths []string
	for _, dir := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting", "rules-compliance", "rules-placeholder"} {
		err := filepath.WalkDir(filepath.Join(sigmaHQ, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yml") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			parsed, err := ParseAll(data)
			if err != nil {
				return nil // TestSigmaHQAllRulesParse reports it
			}
			for _, r := range parsed {
				if r.Correlation != nil {
					continue
				}
				lm := LogsourceMatch{Category: r.Logsource.Category, Product: r.Logsource.Product, Service: r.Logsource.Service}
				if !seen[lm] {
					seen[lm] = true
					m.Logsources = append(m.Logsources, LogsourceMapping{Name: "any", Match: []LogsourceMatch{lm}, Sources: []string{"any"}, Fallback: []string{"labels."}})
				}
				rules = append(rules, r)
				paths = append(paths, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	byConstruct := map[string][]string{}
	ok := 0
	for i, r := range rules {
		_, err := Compile(r, Options{Mapping: m})
		if err == nil {
			ok++
			continue
		}
		var ue *UnsupportedError
		construct := "invalid"
		if errors.As(err, &ue) {
			construct = ue.Construct
		}
		byConstruct[construct] = append(byConstruct[construct], fmt.Sprintf("%s (%s): %v", filepath.Base(paths[i]), r.ID, err))
	}
	t.Logf("%d of %d rules compile with every field accepted (%.2f%%)", ok, len(rules), 100*float64(ok)/float64(len(rules)))
	for c, list := range byConstruct {
		t.Logf("%s: %d", c, len(list))
		for _, l := range list {
			t.Logf("    %s", l)
		}
	}
	if len(byConstruct["invalid"]) > 0 {
		t.Errorf("%d SigmaHQ rules rejected as invalid", len(byConstruct["invalid"]))
	}
}
