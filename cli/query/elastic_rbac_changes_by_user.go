package query

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// rbacVerbs are the verbs that change an object.
var rbacVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

// elasticRBACChangesByUser is rbac_changes_by_user.sql: per user, the
// requests changing RBAC objects, busiest first.
func elasticRBACChangesByUser(ctx context.Context, s *searcher, a Args, _ int) ([][]any, error) {
	clauses := []map[string]any{
		window(a.Time("from"), a.Time("to")),
		term("kubernetes.audit.objectRef.apiGroup", "rbac.authorization.k8s.io"),
		termsQuery("event.action", rbacVerbs...),
	}
	if u := a.String("user"); u != "" {
		clauses = append(clauses, term("user.name", u))
	}
	// The objects as [namespace/]resource/name: nested terms, joined here
	// (a document without a namespace is in the "" bucket).
	objects := map[string]any{
		"terms": map[string]any{"field": "orchestrator.namespace", "size": maxTerms, "missing": ""},
		"aggs": map[string]any{"type": map[string]any{
			"terms": map[string]any{"field": "orchestrator.resource.type", "size": maxTerms, "missing": ""},
			"aggs": map[string]any{"name": map[string]any{
				"terms": map[string]any{"field": "orchestrator.resource.name", "size": maxTerms, "missing": ""},
			}},
		}},
	}
	type user struct {
		name    string
		changes int64
		row     []any
	}
	var users []user
	err := s.groups(ctx, s.events, filter(clauses...), []any{termsSource("user", "user.name")}, map[string]any{
		"changes": distinct("kubernetes.audit.auditID"),
		"refused": map[string]any{
			"filter": term("event.outcome", "failure"),
			"aggs":   map[string]any{"changes": distinct("kubernetes.audit.auditID")},
		},
		"first":   map[string]any{"min": map[string]any{"field": "@timestamp"}},
		"last":    map[string]any{"max": map[string]any{"field": "@timestamp"}},
		"verbs":   keys("event.action"),
		"objects": objects,
	}, func(b bucket) error {
		changes, err := b.count("changes")
		if err != nil {
			return err
		}
		var refused bucket
		if err := unmarshal(b.aggs["refused"], &refused.aggs); err != nil {
			return fmt.Errorf("aggregation refused: %w", err)
		}
		nRefused, err := refused.count("changes")
		if err != nil {
			return err
		}
		first, err := b.millis("first")
		if err != nil {
			return err
		}
		last, err := b.millis("last")
		if err != nil {
			return err
		}
		verbs, _, err := terms(b.aggs, "verbs")
		if err != nil {
			return err
		}
		objs, err := rbacObjects(b.aggs)
		if err != nil {
			return err
		}
		name := b.keyString("user")
		users = append(users, user{name: name, changes: changes, row: []any{name, changes, nRefused, first, last, verbs, objs}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(users, func(x, y user) int {
		return cmp.Or(cmp.Compare(y.changes, x.changes), strings.Compare(x.name, y.name))
	})
	rows := make([][]any, len(users))
	for i, u := range users {
		rows[i] = u.row
	}
	return rows, nil
}

// rbacObjects joins the nested namespace → type → name buckets into
// sorted, distinct [namespace/]resource/name strings.
func rbacObjects(aggs map[string]json.RawMessage) ([]string, error) {
	out := []string{}
	namespaces, nsBuckets, err := terms(aggs, "objects")
	if err != nil {
		return nil, err
	}
	for i, ns := range namespaces {
		types, typeBuckets, err := terms(nsBuckets[i], "type")
		if err != nil {
			return nil, err
		}
		for j, typ := range types {
			names, _, err := terms(typeBuckets[j], "name")
			if err != nil {
				return nil, err
			}
			for _, name := range names {
				o := typ + "/" + name
				if ns != "" {
					o = ns + "/" + o
				}
				out = append(out, o)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
