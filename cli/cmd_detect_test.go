package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const samples = "../collectors/replay/samples/"

// TestDetectOnTheBundledSample: `crowsnest detect` raises the alerts the
// sample's story sets up, as JSON lines.
func TestDetectOnTheBundledSample(t *testing.T) {
	out, errOut, code := execute(t, "", "detect", "--source", "k8s_audit", samples+"k8s_audit.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var a struct {
			Event struct{ Kind string } `json:"event"`
			Rule  struct{ Name string } `json:"rule"`
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil || a.Event.Kind != "alert" {
			t.Fatalf("not an alert line: %q (%v)", line, err)
		}
		names[a.Rule.Name] = true
	}
	for _, want := range []string{"Binding to cluster-admin", "Privileged container in a workload", "Exec, attach or port-forward into a pod", "Anonymous request allowed", "Service account listed secrets across all namespaces"} {
		if !names[want] {
			t.Errorf("no %q alert; got %v", want, names)
		}
	}
	if !strings.Contains(errOut, "92 records, 92 events") {
		t.Errorf("summary: %s", errOut)
	}
}

func TestDetectExtraRulesAndNoBuiltin(t *testing.T) {
	dir := t.TempDir()
	rule := "title: Anyone lists pods\nid: 9d3c4c31-0d6e-4b53-9d8e-1d1c2b0f7a10\nlevel: low\nlogsource: {product: kubernetes, service: audit}\n" +
		"detection:\n  s: {verb: list, objectRef.resource: pods}\n  condition: s\n"
	path := filepath.Join(dir, "pods.yml")
	if err := os.WriteFile(path, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := execute(t, "", "detect", "--source", "k8s_audit", "--no-builtin", "--suppression-window", "0", "--rules", path, samples+"k8s_audit.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if !strings.Contains(l, `"name":"Anyone lists pods"`) {
			t.Fatalf("alert of another rule with --no-builtin: %s", l)
		}
	}
	if len(lines) < 2 {
		t.Fatalf("%d alerts, want every pod list (suppression off)", len(lines))
	}
}

func TestDetectReportsBadInput(t *testing.T) {
	_, errOut, code := execute(t, "not json\n", "detect", "--source", "k8s_audit")
	if code != 1 || !strings.Contains(errOut, "stdin:1:") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, errOut, code = execute(t, "", "detect", "--source", "nosuch")
	if code != 2 {
		t.Fatalf("unknown source: exit %d: %s", code, errOut)
	}
	_, errOut, code = execute(t, "", "detect", "--source", "k8s_audit", "--rules", "/no/such/dir")
	if code != 2 {
		t.Fatalf("missing rules dir: exit %d: %s", code, errOut)
	}
}

func TestRulesLint(t *testing.T) {
	out, errOut, code := execute(t, "", "rules", "lint")
	if code != 0 || !strings.Contains(out, "0 unsupported, 0 invalid") || !strings.HasPrefix(out, "ok ") {
		t.Fatalf("built-in pack: exit %d\n%s%s", code, out, errOut)
	}
	dir := t.TempDir()
	files := map[string]string{
		"good.yml":        "title: g\nlogsource: {product: kubernetes, service: audit}\ndetection: {s: {verb: get}, condition: s}\n",
		"unsupported.yml": "title: u\nid: u-1\nlogsource: {product: windows, category: process_creation}\ndetection: {s: {Image: x}, condition: s}\n",
		"warn.yml":        "title: w\nlogsource: {product: kubernetes, service: audit}\ndetection: {s: {responseStatus.code: ALLOW}, condition: s}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, _, code = execute(t, "", "rules", "lint", dir)
	if code != 1 || !strings.Contains(out, "unsupported  unsupported.yml:1  u-1  logsource:") || !strings.Contains(out, "warning      warn.yml") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if _, _, code = execute(t, "", "rules", "lint", "--allow-unsupported", dir); code != 0 {
		t.Fatalf("--allow-unsupported: exit %d", code)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("title: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = execute(t, "", "rules", "lint", "--allow-unsupported", dir)
	if code != 1 || !strings.Contains(out, "invalid      bad.yml") {
		t.Fatalf("invalid rule: exit %d\n%s", code, out)
	}
}

// TestDetectMergedInputsCorrelate: --input merges sources by event time, so
// the audit × runtime correlations of the sample's story fire.
func TestDetectMergedInputsCorrelate(t *testing.T) {
	out, errOut, code := execute(t, "", "detect",
		"--input", "k8s_audit="+samples+"k8s_audit.jsonl",
		"--input", "tetragon="+samples+"tetragon.jsonl",
		"--input", "falco="+samples+"falco.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var correlations []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var a struct {
			Rule      struct{ Name string } `json:"rule"`
			Crowsnest struct {
				Alert struct{ Correlation string } `json:"alert"`
			} `json:"crowsnest"`
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatal(err)
		}
		if a.Crowsnest.Alert.Correlation != "" {
			correlations = append(correlations, a.Rule.Name)
		}
	}
	want := "Exec into a pod followed by an outbound connection from it|Burst of forbidden Kubernetes API requests from one user|New privileged pod followed by an exec into it"
	if strings.Join(correlations, "|") != want {
		t.Fatalf("correlation alerts %q", correlations)
	}
	if _, errOut, code := execute(t, "", "detect", "--source", "k8s_audit", "--input", "falco=x"); code != 2 {
		t.Fatalf("--source with --input: exit %d %s", code, errOut)
	}
}

// TestDetectRuleTestdataThroughTheCLI: a rule's positive records raise its
// alert through `crowsnest detect` with the test configuration.
func TestDetectRuleTestdataThroughTheCLI(t *testing.T) {
	dir := "../processor/detect/rules/testdata/"
	out, errOut, code := execute(t, "", "detect", "--config", dir+"crowsnest.yml", "--suppression-window", "0",
		"--source", "k8s_audit", dir+"k8s_untrusted_registry/k8s_audit.positive.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, `"name":"Workload image from an untrusted registry"`); n != 2 {
		t.Fatalf("%d untrusted-registry alerts on its 2 positive records:\n%s", n, out)
	}
}
