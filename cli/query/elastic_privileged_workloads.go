package query

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
)

// elasticPrivilegedWorkloads is privileged_workloads.sql: successful
// creations whose pod spec breaks isolation, one row per audit ID (its
// earliest stage).
func elasticPrivilegedWorkloads(ctx context.Context, s *searcher, a Args, _ int) ([][]any, error) {
	const spec = "kubernetes.pod_spec."
	query := map[string]any{"bool": map[string]any{
		"filter": []any{
			window(a.Time("from"), a.Time("to")),
			term("event.action", "create"),
			term("event.outcome", "success"),
		},
		"should": []any{
			term(spec+"privileged", true),
			term(spec+"host_pid", true),
			term(spec+"host_network", true),
			term(spec+"host_ipc", true),
			exists(spec + "host_paths"),
			exists(spec + "added_capabilities"),
		},
		"minimum_should_match": 1,
	}}
	type created struct {
		ts    time.Time
		audit string
		row   []any
	}
	var all []created
	err := s.hits(ctx, s.events, query, []string{
		"@timestamp", "orchestrator.namespace", "orchestrator.resource.type", "orchestrator.resource.name",
		"user.name", spec + "privileged", spec + "host_pid", spec + "host_network", spec + "host_ipc",
		spec + "host_paths", spec + "added_capabilities", spec + "images", "kubernetes.audit.auditID",
	}, func(d doc) error {
		ts, err := d.time("@timestamp")
		if err != nil {
			return err
		}
		caps, paths := d.strs(spec+"added_capabilities"), d.strs(spec+"host_paths")
		// The reasons in the SQL's order.
		reasons := []string{}
		for _, r := range []struct {
			name string
			on   bool
		}{
			{"privileged", d.bool(spec + "privileged")},
			{"hostPID", d.bool(spec + "host_pid")},
			{"hostNetwork", d.bool(spec + "host_network")},
			{"hostIPC", d.bool(spec + "host_ipc")},
			{"hostPath", len(paths) > 0},
			{"capabilities", len(caps) > 0},
		} {
			if r.on {
				reasons = append(reasons, r.name)
			}
		}
		audit := d.str("kubernetes.audit.auditID")
		all = append(all, created{ts: ts, audit: audit, row: []any{
			ts, d.str("orchestrator.namespace"), d.str("orchestrator.resource.type"), d.str("orchestrator.resource.name"),
			d.str("user.name"), reasons, caps, paths, d.strs(spec + "images"), audit,
		}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(all, func(x, y created) int {
		return cmp.Or(x.ts.Compare(y.ts), strings.Compare(x.audit, y.audit))
	})
	seen := map[string]bool{}
	var rows [][]any
	for _, c := range all {
		if !seen[c.audit] {
			seen[c.audit] = true
			rows = append(rows, c.row)
		}
	}
	return rows, nil
}
