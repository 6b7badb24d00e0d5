package query

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strings"
	"time"
)

// elasticExecIntoPodTimeline is exec_into_pod_timeline.sql: exec and
// attach requests into pods of one namespace, one row per audit ID (its
// earliest stage, the most complete first when stages share a time).
func elasticExecIntoPodTimeline(ctx context.Context, s *searcher, a Args, _ int) ([][]any, error) {
	query := filter(
		term("orchestrator.namespace", a.String("namespace")),
		window(a.Time("from"), a.Time("to")),
		term("orchestrator.resource.type", "pods"),
		termsQuery("kubernetes.audit.objectRef.subresource", "exec", "attach"),
	)
	type req struct {
		ts    time.Time
		audit string
		rank  int
		row   []any
	}
	var reqs []req
	err := s.hits(ctx, s.events, query, []string{
		"@timestamp", "user.name", "orchestrator.resource.name", "kubernetes.audit.requestURI",
		"kubernetes.audit.objectRef.subresource", "source.ip", "event.outcome",
		"kubernetes.audit.responseStatus.code", "kubernetes.audit.auditID", "kubernetes.audit.stage",
	}, func(d doc) error {
		ts, err := d.time("@timestamp")
		if err != nil {
			return err
		}
		uri, audit := d.str("kubernetes.audit.requestURI"), d.str("kubernetes.audit.auditID")
		reqs = append(reqs, req{ts: ts, audit: audit, rank: stageRank(d.str("kubernetes.audit.stage")), row: []any{
			ts, d.str("user.name"), d.str("orchestrator.resource.name"), urlParameter(uri, "container"),
			d.str("kubernetes.audit.objectRef.subresource"), execCommand(uri), d.str("source.ip"),
			d.str("event.outcome"), d.int("kubernetes.audit.responseStatus.code"), audit,
		}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(reqs, func(x, y req) int {
		return cmp.Or(x.ts.Compare(y.ts), strings.Compare(x.audit, y.audit), cmp.Compare(x.rank, y.rank))
	})
	seen := map[string]bool{}
	var rows [][]any
	for _, r := range reqs {
		if !seen[r.audit] {
			seen[r.audit] = true
			rows = append(rows, r.row)
		}
	}
	return rows, nil
}

// stageRank orders the stages of one request, most complete first, as the
// SQL's indexOf does (an unknown stage is 0, first).
func stageRank(stage string) int {
	return slices.Index([]string{"ResponseComplete", "ResponseStarted", "Panic", "RequestReceived"}, stage) + 1
}

// rawQuery is the query string of a request URI.
func rawQuery(uri string) string {
	_, q, _ := strings.Cut(uri, "?")
	q, _, _ = strings.Cut(q, "#")
	return q
}

// urlParameter is the first value of parameter name in the URI's query,
// undecoded, as ClickHouse's extractURLParameter returns it.
func urlParameter(uri, name string) string {
	for p := range strings.SplitSeq(rawQuery(uri), "&") {
		if v, ok := strings.CutPrefix(p, name+"="); ok {
			return v
		}
	}
	return ""
}

// execCommand is the command of an exec request: its command= parameters,
// percent-decoded ('+' kept, as ClickHouse's decodeURLComponent does),
// joined by spaces.
func execCommand(uri string) string {
	var parts []string
	for p := range strings.SplitSeq(rawQuery(uri), "&") {
		v, ok := strings.CutPrefix(p, "command=")
		if !ok {
			continue
		}
		if d, err := url.PathUnescape(v); err == nil {
			v = d
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, " ")
}
