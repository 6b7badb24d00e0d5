package k8saudit_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/corpus"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/ecsdiff"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// elasticClaims are the fields where we claim to match Elastic's Kubernetes
// integration (a prefix covers the keys below it). Every difference on them
// must be documented in DIFFERENCES.md, and every documented difference must
// still occur.
var elasticClaims = []string{
	"@timestamp",
	"event.kind", "event.action", "event.outcome", "event.category", "event.type", "event.original",
	"user.name", "user.id", "user.domain", "user.roles",
	"source.ip", "user_agent.original", "url.original",
	"orchestrator.type", "orchestrator.api_version", "orchestrator.namespace",
	"orchestrator.resource.type", "orchestrator.resource.name", "orchestrator.cluster.name",
	"related.ip", "related.user",
	"kubernetes.audit.auditID", "kubernetes.audit.stage", "kubernetes.audit.level", "kubernetes.audit.verb",
	"kubernetes.audit.requestURI", "kubernetes.audit.sourceIPs", "kubernetes.audit.user",
	"kubernetes.audit.impersonatedUser.username",
	"kubernetes.audit.objectRef.resource", "kubernetes.audit.objectRef.subresource",
	"kubernetes.audit.objectRef.namespace", "kubernetes.audit.objectRef.name",
	"kubernetes.audit.objectRef.apiGroup", "kubernetes.audit.objectRef.apiVersion",
	"kubernetes.audit.responseStatus.code", "kubernetes.audit.annotations",
}

const elasticDir = "elastic-integrations/packages/kubernetes/data_stream/audit_logs/_dev/test/pipeline/"

// shape names the record shapes DIFFERENCES.md distinguishes.
func shape(line []byte) string {
	switch {
	case bytes.Contains(line, []byte(`"protoPayload"`)):
		return "gke"
	case bytes.Contains(line, []byte(`"properties"`)):
		return "aks"
	}
	return "native"
}

// TestElasticExpected maps Elastic's own test logs and compares each event
// with Elastic's expected document on the claimed fields.
func TestElasticExpected(t *testing.T) {
	al := readAllowlist(t)
	n := newNormalizer(t, normalize.NewDefaultConfig())
	docs := 0
	for _, name := range []string{"test-audit.log", "test-kube-audit.log"} {
		lines := readLines(t, corpus.Path(t, elasticDir+name))
		expected := readExpected(t, corpus.Path(t, elasticDir+name+"-expected.json"))
		if len(lines) != len(expected) {
			t.Fatalf("%s: %d lines, %d expected documents", name, len(lines), len(expected))
		}
		for i, line := range lines {
			var ev schemas.Event
			rec := &normalize.Record{Source: k8saudit.Source, Data: line}
			if err := n.Normalize(rec, &ev); err != nil {
				t.Errorf("%s line %d: rejected: %v", name, i+1, err)
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
			sh := shape(line)
			for _, d := range ecsdiff.Compare(ref, ours, elasticClaims) {
				if !al.Allows(sh, d) {
					t.Errorf("%s line %d (%s): undocumented difference from Elastic: %s", name, i+1, sh, d)
				}
			}
			docs++
		}
	}
	for _, a := range al.Unused() {
		t.Errorf("DIFFERENCES.md:%d documents %s [%s] for %v, which no longer differs", a.Line, a.Field, a.Kind, a.Shapes)
	}
	t.Logf("compared %d documents on %d claimed fields; %d documented differences", docs, len(elasticClaims), al.Len())
}

// TestElasticAKSLineWithoutExpected: Elastic ships one AKS line (log as an
// object rather than a string) without an expected document; it must map.
func TestElasticAKSLineWithoutExpected(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	for i, line := range readLines(t, corpus.Path(t, elasticDir+"test-audit-aks-line5.no-expected.log")) {
		var ev schemas.Event
		if err := n.Normalize(&normalize.Record{Source: k8saudit.Source, Data: line}, &ev); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if ev.Kubernetes.Audit.AuditID != "abcde12345" || ev.Event.Action != "update" || ev.User.Name != "aksService" {
			t.Errorf("line %d: auditID %q action %q user %q", i+1, ev.Kubernetes.Audit.AuditID, ev.Event.Action, ev.User.Name)
		}
	}
}

// TestHkermaCorpus: all 16,563 records of a real 3-node cluster must map.
func TestHkermaCorpus(t *testing.T) {
	path := corpus.Path(t, "hkerma-k8s-audit/audit-logs.reconstructed.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := newNormalizer(t, normalize.NewDefaultConfig())
	ok, bad, err := normalize.Lines(t.Context(), f, n, k8saudit.Source, discard{}, func(line int, err error) {
		t.Errorf("line %d rejected: %v", line, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok != 16563 || bad != 0 {
		t.Errorf("ok %d, bad %d; want 16563, 0", ok, bad)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func readAllowlist(t *testing.T) *ecsdiff.Allowlist {
	t.Helper()
	f, err := os.Open("DIFFERENCES.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	al, err := ecsdiff.ParseAllowlist(f)
	if err != nil {
		t.Fatal(err)
	}
	return al
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
