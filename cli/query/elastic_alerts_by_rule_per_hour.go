package query

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
)

// elasticAlertsByRulePerHour is alerts_by_rule_per_hour.sql: alerts per
// hour and rule, with the entities and namespaces they concern.
func elasticAlertsByRulePerHour(ctx context.Context, s *searcher, a Args, _ int) ([][]any, error) {
	type group struct {
		hour   time.Time
		rule   string
		alerts int64
		row    []any
	}
	var groups []group
	sources := []any{
		map[string]any{"hour": map[string]any{"date_histogram": map[string]any{"field": "@timestamp", "calendar_interval": "1h", "time_zone": "UTC"}}},
		termsSource("rule_id", "rule.id"),
		termsSource("rule_name", "rule.name"),
		termsSource("rule_level", "rule.level"),
	}
	err := s.groups(ctx, s.alerts, window(a.Time("from"), a.Time("to")), sources, map[string]any{
		"alerts":     distinct("event.id"),
		"entities":   distinct("crowsnest.alert.entity"),
		"namespaces": keys("orchestrator.namespace"),
	}, func(b bucket) error {
		alerts, err := b.count("alerts")
		if err != nil {
			return err
		}
		entities, err := b.count("entities")
		if err != nil {
			return err
		}
		namespaces, _, err := terms(b.aggs, "namespaces")
		if err != nil {
			return err
		}
		namespaces = slices.DeleteFunc(namespaces, func(ns string) bool { return ns == "" })
		hour := time.UnixMilli(b.keyInt("hour")).UTC()
		rule := b.keyString("rule_id")
		groups = append(groups, group{hour: hour, rule: rule, alerts: alerts, row: []any{
			hour, rule, b.keyString("rule_name"), b.keyString("rule_level"), alerts, entities, namespaces,
		}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(groups, func(x, y group) int {
		return cmp.Or(x.hour.Compare(y.hour), cmp.Compare(y.alerts, x.alerts), strings.Compare(x.rule, y.rule))
	})
	rows := make([][]any, len(groups))
	for i, g := range groups {
		rows[i] = g.row
	}
	return rows, nil
}
