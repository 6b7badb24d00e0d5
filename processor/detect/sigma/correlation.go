package sigma

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Correlation is the correlation section of a Sigma correlation rule.
type Correlation struct {
	Type     string // event_count, value_count, temporal, temporal_ordered
	Rules    []string
	GroupBy  []string
	Timespan time.Duration
	// Condition is the threshold: on the events (event_count), the distinct
	// values of its Field (value_count) or, optional, the distinct rules
	// (temporal, temporal_ordered) matched in the window.
	Condition *Threshold
	// Aliases maps an alias field to the field of each referenced rule.
	Aliases  map[string]map[string]string
	Generate bool
	Line     int
}

// Threshold is a correlation condition: Op (gt, gte, lt, lte, eq, neq)
// against Value, and for value_count the Field whose distinct values count.
type Threshold struct {
	Field string
	Ops   []ThresholdOp
}

// ThresholdOp is one comparison of a threshold; all must hold.
type ThresholdOp struct {
	Op    string
	Value int64
}

// DecidedAtClose reports whether the threshold can only be judged once the
// window has closed: a count that satisfies lt, lte, eq or neq may stop
// satisfying it when another event comes, whereas gt and gte, once they
// hold, keep holding.
func (t *Threshold) DecidedAtClose() bool {
	for _, o := range t.Ops {
		switch o.Op {
		case "lt", "lte", "eq", "neq":
			return true
		}
	}
	return false
}

// Holds reports whether n satisfies every comparison.
func (t *Threshold) Holds(n int64) bool {
	for _, o := range t.Ops {
		var ok bool
		switch o.Op {
		case "gt":
			ok = n > o.Value
		case "gte":
			ok = n >= o.Value
		case "lt":
			ok = n < o.Value
		case "lte":
			ok = n <= o.Value
		case "eq":
			ok = n == o.Value
		case "neq":
			ok = n != o.Value
		}
		if !ok {
			return false
		}
	}
	return true
}

func parseCorrelation(n *yaml.Node) (*Correlation, error) {
	if n.Kind != yaml.MappingNode {
		return nil, perr(n, "correlation must be a map")
	}
	c := &Correlation{Line: n.Line}
	var err error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "type":
			c.Type, err = scalarString(v, "correlation.type")
		case "rules":
			c.Rules, err = stringList(v, "correlation.rules")
		case "group-by":
			c.GroupBy, err = stringList(v, "correlation.group-by")
		case "timespan", "timeframe":
			var s string
			if s, err = scalarString(v, "correlation.timespan"); err == nil {
				c.Timespan, err = ParseTimespan(s)
				if err != nil {
					err = perr(v, "correlation.timespan: %v", err)
				}
			}
		case "generate":
			c.Generate = v.Value == "true"
		case "condition":
			c.Condition, err = parseThreshold(v)
		case "aliases":
			c.Aliases, err = parseAliases(v)
		default:
			err = perr(k, "correlation: unknown key %q", k.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	switch c.Type {
	case "event_count", "value_count":
		if c.Condition == nil {
			return nil, perr(n, "correlation %s needs a condition", c.Type)
		}
		if c.Type == "value_count" && c.Condition.Field == "" {
			return nil, perr(n, "correlation value_count needs condition.field")
		}
	case "temporal", "temporal_ordered":
		if len(c.Rules) < 2 && c.Condition == nil {
			return nil, perr(n, "correlation %s needs at least two rules", c.Type)
		}
	case "":
		return nil, perr(n, "correlation.type is required")
	default:
		return nil, perr(n, "correlation.type %q: want event_count, value_count, temporal or temporal_ordered", c.Type)
	}
	if len(c.Rules) == 0 {
		return nil, perr(n, "correlation.rules is required")
	}
	if c.Timespan <= 0 {
		return nil, perr(n, "correlation.timespan is required")
	}
	return c, nil
}

func parseThreshold(n *yaml.Node) (*Threshold, error) {
	if n.Kind != yaml.MappingNode {
		return nil, perr(n, "correlation.condition must be a map")
	}
	t := &Threshold{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "field":
			f, err := stringList(v, "condition.field")
			if err != nil || len(f) != 1 {
				return nil, perr(v, "correlation.condition.field must be one field name")
			}
			t.Field = f[0]
		case "gt", "gte", "lt", "lte", "eq", "neq":
			x, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil || v.Kind != yaml.ScalarNode {
				return nil, perr(v, "correlation.condition.%s must be an integer", k.Value)
			}
			t.Ops = append(t.Ops, ThresholdOp{Op: k.Value, Value: x})
		default:
			return nil, perr(k, "correlation.condition: unknown key %q", k.Value)
		}
	}
	if len(t.Ops) == 0 {
		return nil, perr(n, "correlation.condition needs gt, gte, lt, lte, eq or neq")
	}
	return t, nil
}

func parseAliases(n *yaml.Node) (map[string]map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, perr(n, "correlation.aliases must be a map")
	}
	out := map[string]map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.MappingNode {
			return nil, perr(v, "alias %q must map rule names to fields", k.Value)
		}
		m := map[string]string{}
		for j := 0; j+1 < len(v.Content); j += 2 {
			m[v.Content[j].Value] = v.Content[j+1].Value
		}
		out[k.Value] = m
	}
	return out, nil
}

// ParseTimespan reads a Sigma timespan: a number and a unit s, m, h, d, w
// (M for months and y for years are refused: a window that long cannot be
// held in memory).
func ParseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("timespan %q: want a number and a unit (s, m, h, d, w)", s)
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n <= 0 || n > 1<<20 {
		return 0, fmt.Errorf("timespan %q: want a positive number and a unit (s, m, h, d, w)", s)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	default:
		return 0, fmt.Errorf("timespan %q: unit must be s, m, h, d or w", s)
	}
	return time.Duration(n) * unit, nil
}
