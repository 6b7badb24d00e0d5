package rules_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/detect"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// panther is Panther's labelled Kubernetes audit tests (Apache-2.0), read in
// place: a second detection-as-code suite to hold our pack against.
const panther = "../../../../shared/corpora/panther-analysis/k8s_labeled_tests.jsonl"

// pantherEquivalents maps a Panther rule to the built-in rule claiming the
// same detection.
var pantherEquivalents = map[string]string{
	"Kubernetes.Pod.Privileged.Created":                   "k8s_privileged_container",
	"GCP.K8S.Privileged.Pod.Created":                      "k8s_privileged_container",
	"Kubernetes.Pod.Host.IPC":                             "k8s_host_namespaces",
	"Kubernetes.Pod.Host.Network":                         "k8s_host_namespaces",
	"Kubernetes.Pod.Host.PID":                             "k8s_host_namespaces",
	"GCP.K8s.Pod.Attached.To.Node.Host.Network":           "k8s_host_namespaces",
	"GCP.K8s.Pod.Using.Host.PID.Namespace":                "k8s_host_namespaces",
	"Kubernetes.Pod.Dangerous.Capabilities":               "k8s_dangerous_capabilities",
	"Kubernetes.Pod.HostPath.Volume":                      "k8s_sensitive_hostpath",
	"GCP.K8S.Pod.Create.Or.Modify.Host.Path.Volume.Mount": "k8s_sensitive_hostpath",
	"Kubernetes.Pod.Exec":                                 "k8s_exec_attach_portforward",
	"GCP.K8s.ExecIntoPod":                                 "k8s_exec_attach_portforward",
	"Kubernetes.ClusterRoleBinding.Privileged":            "k8s_rbac_bind_cluster_admin",
	"Kubernetes.Role.Wildcard":                            "k8s_rbac_wildcard_role",
	"Kubernetes.API.AnonymousAccess":                      "k8s_anonymous_allowed",
	"Amazon.EKS.AnonymousAPIAccess":                       "k8s_anonymous_allowed",
}

// pantherDifferences are the labelled cases where crowsnest deliberately
// judges otherwise (or the fixture lacks what a real record carries), each
// with the reason; docs/detection.md lists them. Any other disagreement
// fails the test, and so does a listed one that no longer differs.
var pantherDifferences = map[string]string{
	"Amazon.EKS.AnonymousAPIAccess/ELB Health Check from Public IP":                              "health endpoints are excluded: anonymous /healthz is Kubernetes' default",
	"Amazon.EKS.AnonymousAPIAccess/Anonymous API Access Web Scanner Denied":                      "our rule is about anonymous requests that were allowed; a denied one is noise",
	"GCP.K8S.Pod.Create.Or.Modify.Host.Path.Volume.Mount/Pod Not Created":                        "normalizer gap: GKE response.status Failure without a code reads as success",
	"GCP.K8S.Privileged.Pod.Created/Run-As-Root Pod Created":                                     "running as root is k8s_root_with_privilege_escalation, not privileged",
	"GCP.K8S.Privileged.Pod.Created/GCP Service Account Creating Privileged Pod (Excluded)":      "no principal is trusted to create privileged pods silently",
	"GCP.K8S.Privileged.Pod.Created/Privileged Pod in System Namespace (Excluded)":               "system namespaces are not exempt (a common escape path)",
	"GCP.K8s.Pod.Attached.To.Node.Host.Network/triggers":                                         "fixture has no resourceName, so no resource (a real GKE entry has it)",
	"GCP.K8s.Pod.Using.Host.PID.Namespace/triggers":                                              "fixture has no resourceName, so no resource (a real GKE entry has it)",
	"Kubernetes.API.AnonymousAccess/GCP GKE Anonymous API Access":                                "fixture has authoritySelector but no principalEmail: no user to recognise",
	"Kubernetes.ClusterRoleBinding.Privileged/AKS ClusterRoleBinding to system:masters":          "our rule is about cluster-admin; system:masters is a group, not a role",
	"Kubernetes.ClusterRoleBinding.Privileged/GKE ClusterRoleBinding to admin role":              "our rule is about cluster-admin",
	"Kubernetes.ClusterRoleBinding.Privileged/EKS ClusterRoleBinding to controller-manager role": "our rule is about cluster-admin",
	"Kubernetes.ClusterRoleBinding.Privileged/RoleBinding (not ClusterRoleBinding)":              "a RoleBinding to cluster-admin makes a namespace admin: we alert",
	"Kubernetes.ClusterRoleBinding.Privileged/System principal creating binding (excluded)":      "no principal is exempt",
	"Kubernetes.Pod.Host.IPC/System Namespace with HostIPC (Excluded)":                           "system namespaces are not exempt",
	"Kubernetes.Pod.HostPath.Volume/AKS Pod With HostPath":                                       "/mnt/data is not a sensitive host path; we alert on sensitive ones only",
	"Kubernetes.Pod.Privileged.Created/Run-As-Root Pod Created":                                  "running as root is k8s_root_with_privilege_escalation, not privileged",
	"Kubernetes.Pod.Privileged.Created/Pod with runAsUser=0 (root)":                              "running as root is k8s_root_with_privilege_escalation, not privileged",
	"Kubernetes.Pod.Privileged.Created/Privileged Pod in System Namespace (Excluded)":            "system namespaces are not exempt",
	"Kubernetes.Role.Wildcard/System principal creating role (excluded)":                         "no principal is exempt",
	"Kubernetes.Role.Wildcard/Updating existing role (not creating)":                             "an update that adds a wildcard is as dangerous as a creation",
}

type pantherCase struct {
	Source   string          `json:"source_file"`
	RuleID   string          `json:"rule_id"`
	Test     string          `json:"test_name"`
	Expected bool            `json:"expected_result"`
	Format   string          `json:"format"`
	Log      json.RawMessage `json:"log"`
}

func TestPantherLabelledCases(t *testing.T) {
	data, err := os.ReadFile(panther)
	if err != nil {
		t.Skipf("Panther corpus not found at %s (a clone without ../shared): %v", panther, err)
	}
	norm, eng := newEngine(t)
	byFile := subjects(eng)
	type tally struct {
		agree, disagree int
		notes           []string
	}
	results := map[string]*tally{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var c pantherCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		ours, ok := pantherEquivalents[c.RuleID]
		if !ok {
			continue
		}
		r := byFile[ours]
		key := c.RuleID + " → " + ours
		if results[key] == nil {
			results[key] = &tally{}
		}
		ids, err := alertsOnLenient(norm, eng, withIdentity(t, c.Log, c.Format, c.Test))
		if err != nil {
			results[key].notes = append(results[key].notes, fmt.Sprintf("%q (%s): not normalized: %v", c.Test, c.Format, err))
		}
		fired := slices.Contains(ids, r.ID)
		reason, known := pantherDifferences[c.RuleID+"/"+c.Test]
		switch {
		case fired == c.Expected && known:
			t.Errorf("%s/%s: listed as a difference (%s) but now agrees: drop it from pantherDifferences", c.RuleID, c.Test, reason)
		case fired == c.Expected:
			results[key].agree++
		case known:
			results[key].disagree++
			results[key].notes = append(results[key].notes, fmt.Sprintf("%q: Panther %v, crowsnest %v: %s", c.Test, c.Expected, fired, reason))
		default:
			t.Errorf("%s/%s (%s): Panther says %v, crowsnest %v", c.RuleID, c.Test, c.Format, c.Expected, fired)
		}
	}
	keys := make([]string, 0, len(results))
	for k := range results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := results[k]
		t.Logf("%s: %d agree, %d differ", k, r.agree, r.disagree)
		for _, n := range r.notes {
			t.Logf("    %s", n)
		}
	}
}

// alertsOnLenient is alertsOn for third-party records: a record the
// normalizer rejects raises nothing (and is reported by the caller).
func alertsOnLenient(norm *normalize.Normalizer, eng *detect.Engine, log []byte) ([]string, error) {
	var ids []string
	rec := normalize.Record{Source: "k8s_audit", Data: log}
	var ev schemas.Event
	err := norm.NormalizeEach(&rec, &ev, func(e *schemas.Event, err error) error {
		if err != nil {
			return err
		}
		return eng.Process(context.Background(), e, func(a *schemas.Alert) error {
			ids = append(ids, a.Rule.ID)
			return nil
		})
	})
	return ids, err
}

// withIdentity fills in the identity fields Panther's partial fixtures
// leave out (the audit id and stage, GKE's insertId): the normalizer
// requires them and they carry no detection meaning.
func withIdentity(t *testing.T, log []byte, format, name string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(log, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	fill := func(ev map[string]any) {
		if _, ok := ev["auditID"]; !ok {
			ev["auditID"] = "panther-" + fmt.Sprintf("%x", len(name)) + "-" + strings.ReplaceAll(name, " ", "_")
		}
		if _, ok := ev["stage"]; !ok {
			ev["stage"] = "ResponseComplete"
		}
	}
	switch format {
	case "k8s_audit_event":
		fill(m)
	case "gcp_cloud_audit_logentry":
		if _, ok := m["insertId"]; !ok {
			m["insertId"] = "panther-" + strings.ReplaceAll(name, " ", "_")
		}
	case "azure_aks_diagnostic":
		props, _ := m["properties"].(map[string]any)
		if s, ok := props["log"].(string); ok {
			var inner map[string]any
			if json.Unmarshal([]byte(s), &inner) == nil {
				fill(inner)
				b, _ := json.Marshal(inner)
				props["log"] = string(b)
			}
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
