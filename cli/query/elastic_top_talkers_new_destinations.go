package query

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

// elasticTopTalkersNewDestinations is top_talkers_new_destinations.sql:
// per pod, the destinations of the window it did not contact in the
// baseline. Two composite aggregations (window and baseline) over
// namespace, pod, address and port; the anti-join and the ranking are done
// here.
func elasticTopTalkersNewDestinations(ctx context.Context, s *searcher, a Args, limit int) ([][]any, error) {
	network := func(from, to time.Time) map[string]any {
		return map[string]any{"bool": map[string]any{
			"filter": []any{
				window(from, to),
				term("event.category", "network"),
				exists("destination.ip"),
				exists("orchestrator.resource.name"),
			},
			"must_not": []any{
				term("destination.ip", "::"),
				term("orchestrator.resource.name", ""),
			},
		}}
	}
	sources := []any{
		termsSource("namespace", "orchestrator.namespace"),
		termsSource("pod", "orchestrator.resource.name"),
		termsSource("ip", "destination.ip"),
		termsSource("port", "destination.port"),
	}
	type dest struct {
		namespace, pod, ip string
		port               int64
	}
	keyOf := func(b bucket) dest {
		return dest{b.keyString("namespace"), b.keyString("pod"), b.keyString("ip"), b.keyInt("port")}
	}
	known := map[dest]bool{}
	err := s.groups(ctx, s.events, network(a.Time("baseline_from"), a.Time("from")), sources, nil, func(b bucket) error {
		known[keyOf(b)] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	type talk struct {
		conns int64
		dest  string
	}
	type pod struct {
		namespace, pod string
		conns          int64
		first          time.Time
		dests          []talk
	}
	pods := map[[2]string]*pod{}
	err = s.groups(ctx, s.events, network(a.Time("from"), a.Time("to")), sources, map[string]any{
		"conns":      distinct("event.id"),
		"first_seen": map[string]any{"min": map[string]any{"field": "@timestamp"}},
	}, func(b bucket) error {
		d := keyOf(b)
		if known[d] {
			return nil
		}
		conns, err := b.count("conns")
		if err != nil {
			return err
		}
		first, err := b.millis("first_seen")
		if err != nil {
			return err
		}
		p := pods[[2]string{d.namespace, d.pod}]
		if p == nil {
			p = &pod{namespace: d.namespace, pod: d.pod, first: first}
			pods[[2]string{d.namespace, d.pod}] = p
		}
		p.conns += conns
		if first.Before(p.first) {
			p.first = first
		}
		p.dests = append(p.dests, talk{conns, d.ip + ":" + strconv.FormatInt(d.port, 10)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	list := make([]*pod, 0, len(pods))
	for _, p := range pods {
		list = append(list, p)
	}
	slices.SortFunc(list, func(x, y *pod) int {
		return cmp.Or(cmp.Compare(y.conns, x.conns), strings.Compare(x.namespace, y.namespace), strings.Compare(x.pod, y.pod))
	})
	if len(list) > limit+1 {
		list = list[:limit+1] // the SQL's LIMIT {limit}, which Run binds to limit+1
	}
	rows := make([][]any, len(list))
	for i, p := range list {
		// Busiest first, ties by address, as the SQL sorts (-conns, dest).
		slices.SortFunc(p.dests, func(x, y talk) int {
			return cmp.Or(cmp.Compare(y.conns, x.conns), strings.Compare(x.dest, y.dest))
		})
		top := make([]string, 0, 5)
		for _, d := range p.dests[:min(5, len(p.dests))] {
			top = append(top, d.dest)
		}
		rows[i] = []any{p.namespace, p.pod, int64(len(p.dests)), p.conns, p.first, top}
	}
	return rows, nil
}
