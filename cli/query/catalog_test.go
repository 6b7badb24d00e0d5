package query

import (
	"slices"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/hunts"
)

// TestCatalogBothBackends: every hunt of sinks/clickhouse/hunts has an
// Elasticsearch implementation and every implementation a hunt, and each
// hunt's parameters can be read and its columns are declared.
func TestCatalogBothBackends(t *testing.T) {
	cat, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	all, err := hunts.All()
	if err != nil {
		t.Fatal(err)
	}
	var sqlNames, esNames []string
	for _, h := range all {
		sqlNames = append(sqlNames, h.Name)
	}
	for name := range elasticHunts() {
		esNames = append(esNames, name)
	}
	slices.Sort(esNames)
	if !slices.Equal(sqlNames, esNames) {
		t.Fatalf("ClickHouse hunts %v, Elasticsearch hunts %v: they must be the same", sqlNames, esNames)
	}
	if len(cat) != len(all) {
		t.Fatalf("catalogue has %d hunts, want %d", len(cat), len(all))
	}
	for _, h := range cat {
		if h.elastic == nil || len(h.Columns) == 0 {
			t.Errorf("%s: no Elasticsearch implementation or no columns", h.Name)
		}
		for _, p := range h.Params {
			if _, err := kindOf(p); err != nil {
				t.Errorf("%s: %v", h.Name, err)
			}
		}
	}
}

func TestFind(t *testing.T) {
	cat, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typed string
		ok    bool
		want  string
	}{
		{"privileged_workloads", true, ""},
		{"privileged-workloads", false, "did you mean privileged_workloads?"},
		{"exec_into_pod", false, "did you mean exec_into_pod_timeline?"},
		{"rbac_changes_by_usr", false, "did you mean rbac_changes_by_user?"},
		{"top_talkers", false, "did you mean top_talkers_new_destinations?"},
		{"zzz", false, "the hunts are alerts_by_rule_per_hour, "},
		{"", false, "the hunts are"},
	} {
		h, err := Find(cat, tc.typed)
		if tc.ok {
			if err != nil || h.Name != tc.typed {
				t.Errorf("Find(%q) = %q, %v", tc.typed, h.Name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Find(%q) error %v, want it to say %q", tc.typed, err, tc.want)
		}
	}
}
