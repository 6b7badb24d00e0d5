package normalize

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// JSONConfig declares how records of the generic json source become events:
// the user's mapping, compiled by processor/normalize/jsonmap. It sits here,
// under `normalize.json`, because the registry builds every mapper from one
// Config; it is checked against the field registry when the configuration
// loads, so a typo in a field name fails `crowsnest config check`.
type JSONConfig struct {
	// Mappings, one per producer. A record takes the mapping whose
	// collectors list names its collector, else the one without a list.
	Mappings []JSONMapping `yaml:"mappings"`
}

// A JSONMapping maps one producer's JSON objects.
type JSONMapping struct {
	// Source names the producer (nginx, myapp): event.provider, and the
	// middle of event.id. Lowercase letters, digits, '_', '-', '.'.
	Source string `yaml:"source"`
	// Collectors are the collector ids (the last token of the raw subject)
	// whose records this mapping takes; empty: every record no other
	// mapping claims.
	Collectors []string `yaml:"collectors"`
	// IDField is the gjson path of the record's natural id; event.id is
	// then json-<source>-<value>. Empty: the collector's message id.
	IDField string `yaml:"id_field"`
	// Timestamp is where @timestamp comes from; without it, when the
	// collector read the record.
	Timestamp JSONTimestamp `yaml:"timestamp"`
	// Fields copy values from the record to registry fields, converted to
	// the field's type.
	Fields []JSONField `yaml:"fields"`
	// Set gives registry fields a fixed value for every record of the
	// mapping (event.category: authentication, ocsf.class_uid: 3002).
	Set []JSONSet `yaml:"set"`
}

// JSONTimestamp is the record's time.
type JSONTimestamp struct {
	// Field is the gjson path of the time.
	Field string `yaml:"field"`
	// Layout is rfc3339 (the default), unix, unix_ms, unix_us, unix_ns
	// (numbers or numeric strings), or a Go reference layout
	// ("02/Jan/2006:15:04:05 -0700").
	Layout string `yaml:"layout"`
}

// A JSONField copies one value.
type JSONField struct {
	// From is a gjson path into the record (pinned gjson syntax; plain
	// dotted paths are walked in one pass, others evaluated with gjson).
	From string `yaml:"from"`
	// To is a registry field name (docs/fields.md), e.g. user.name.
	To string `yaml:"to"`
	// Layout reads a date field, as JSONTimestamp.Layout; only for dates.
	Layout string `yaml:"layout"`
}

// A JSONSet gives a field a fixed value, written as YAML scalar text and
// parsed by the field's type.
type JSONSet struct {
	To    string `yaml:"to"`
	Value string `yaml:"value"`
}

// Time layouts that are not Go reference layouts.
const (
	LayoutRFC3339 = "rfc3339"
	LayoutUnix    = "unix"
	LayoutUnixMS  = "unix_ms"
	LayoutUnixUS  = "unix_us"
	LayoutUnixNS  = "unix_ns"
)

// JSONReserved reports whether a json mapping may not write field, and why:
// the Normalizer or the mapping's own keys set it.
func JSONReserved(field string) (why string, reserved bool) {
	switch {
	case field == "@timestamp":
		return "set by timestamp", true
	case field == "event.id":
		return "set by id_field", true
	case field == "event.ingested", field == "event.created", field == "event.dataset", field == "event.module",
		field == "event.original", field == "ocsf.type_uid", strings.HasPrefix(field, "crowsnest."):
		return "set by the normalizer for every event", true
	}
	return "", false
}

// validate reports every problem with its path below `json`.
func (c *JSONConfig) validate() error {
	var errs []error
	sources := map[string]int{}
	collectors := map[string]int{}
	defaults := 0
	for i := range c.Mappings {
		m := &c.Mappings[i]
		p := fmt.Sprintf("mappings[%d]", i)
		if err := m.validate(p); err != nil {
			errs = append(errs, err)
		}
		if j, dup := sources[m.Source]; dup && m.Source != "" {
			errs = append(errs, config.FieldError(p+".source", "%q is also mappings[%d].source", m.Source, j))
		}
		sources[m.Source] = i
		if len(m.Collectors) == 0 {
			defaults++
			if defaults == 2 {
				errs = append(errs, config.FieldError(p+".collectors", "two mappings without collectors: only one may take the records no other mapping claims"))
			}
		}
		for k, col := range m.Collectors {
			if j, dup := collectors[col]; dup {
				errs = append(errs, config.FieldError(fmt.Sprintf("%s.collectors[%d]", p, k), "collector %q is also taken by mappings[%d]", col, j))
			}
			collectors[col] = i
		}
	}
	return errors.Join(errs...)
}

func (m *JSONMapping) validate(p string) error {
	var errs []error
	if !validSourceName(m.Source) {
		errs = append(errs, config.FieldError(p+".source", "must be 1-64 of a-z, 0-9, '_', '-', '.', got %q", m.Source))
	}
	for k, col := range m.Collectors {
		if col == "" || strings.ContainsAny(col, ". *>\t\r\n") {
			errs = append(errs, config.FieldError(fmt.Sprintf("%s.collectors[%d]", p, k), "must be a collector id (one NATS subject token), got %q", col))
		}
	}
	if err := checkPath(m.IDField, true); err != nil {
		errs = append(errs, config.FieldError(p+".id_field", "%w", err))
	}
	if m.Timestamp.Field == "" && m.Timestamp.Layout != "" {
		errs = append(errs, config.FieldError(p+".timestamp.field", "must be set when timestamp.layout is"))
	}
	if err := checkPath(m.Timestamp.Field, true); err != nil {
		errs = append(errs, config.FieldError(p+".timestamp.field", "%w", err))
	}
	if err := CheckTimeLayout(m.Timestamp.Layout); err != nil {
		errs = append(errs, config.FieldError(p+".timestamp.layout", "%w", err))
	}
	if len(m.Fields) == 0 && len(m.Set) == 0 {
		errs = append(errs, config.FieldError(p+".fields", "a mapping needs fields (or set)"))
	}
	targets := map[string]string{} // field → where it was first written
	for k, f := range m.Fields {
		fp := fmt.Sprintf("%s.fields[%d]", p, k)
		if err := checkPath(f.From, false); err != nil {
			errs = append(errs, config.FieldError(fp+".from", "%w", err))
		}
		info, err := jsonTarget(f.To)
		if err != nil {
			errs = append(errs, config.FieldError(fp+".to", "%w", err))
			continue
		}
		if prev, dup := targets[f.To]; dup && !info.Array {
			errs = append(errs, config.FieldError(fp+".to", "%s is also written by %s (only list fields take several)", f.To, prev))
		}
		targets[f.To] = fp
		switch {
		case info.Type == "date":
			if err := CheckTimeLayout(f.Layout); err != nil {
				errs = append(errs, config.FieldError(fp+".layout", "%w", err))
			}
		case f.Layout != "":
			errs = append(errs, config.FieldError(fp+".layout", "only date fields take a layout; %s is %s", f.To, info.Type))
		}
	}
	for k, s := range m.Set {
		sp := fmt.Sprintf("%s.set[%d]", p, k)
		info, err := jsonTarget(s.To)
		if err != nil {
			errs = append(errs, config.FieldError(sp+".to", "%w", err))
			continue
		}
		if prev, dup := targets[s.To]; dup && !info.Array {
			errs = append(errs, config.FieldError(sp+".to", "%s is also written by %s (only list fields take several)", s.To, prev))
		}
		targets[s.To] = sp
		if err := checkSetValue(info, s.Value); err != nil {
			errs = append(errs, config.FieldError(sp+".value", "%w", err))
		}
	}
	return errors.Join(errs...)
}

func validSourceName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// checkPath rejects what cannot be a gjson path. gjson has no validator;
// its syntax is pinned (STYLE.md), so what is not caught here evaluates to
// nothing rather than failing.
func checkPath(p string, optional bool) error {
	switch {
	case p == "" && optional:
		return nil
	case p == "":
		return errors.New("must be a gjson path, got nothing")
	case len(p) > 512:
		return fmt.Errorf("a path of %d bytes; at most 512", len(p))
	case strings.ContainsAny(p, "\x00\r\n\t"):
		return fmt.Errorf("%q holds control characters", p)
	case p[0] == '.' || p[len(p)-1] == '.' || strings.Contains(p, ".."):
		return fmt.Errorf("%q has an empty path element", p)
	}
	return nil
}

// CheckTimeLayout accepts the named layouts, "" (rfc3339) and Go reference
// layouts (holding the reference year, 2006).
func CheckTimeLayout(l string) error {
	switch l {
	case "", LayoutRFC3339, LayoutUnix, LayoutUnixMS, LayoutUnixUS, LayoutUnixNS:
		return nil
	}
	if !strings.Contains(l, "2006") {
		return fmt.Errorf("%q is not rfc3339, unix, unix_ms, unix_us, unix_ns or a Go layout with the reference time (2006-01-02T15:04:05Z07:00)", l)
	}
	return nil
}

// jsonTarget returns a registry field a mapping may write, or why not.
func jsonTarget(name string) (schemas.FieldInfo, error) {
	var names []string
	for _, f := range schemas.Fields() {
		if f.AlertOnly {
			continue
		}
		if f.Name == name {
			if why, reserved := JSONReserved(name); reserved {
				return f, fmt.Errorf("%s is not for mappings: %s", name, why)
			}
			return f, nil
		}
		names = append(names, f.Name)
	}
	if s := closestName(name, names); s != "" {
		return schemas.FieldInfo{}, fmt.Errorf("no event field %q (did you mean %s?); fields are listed in docs/fields.md", name, s)
	}
	return schemas.FieldInfo{}, fmt.Errorf("no event field %q; fields are listed in docs/fields.md", name)
}

// checkSetValue parses a fixed value as the field's type.
func checkSetValue(f schemas.FieldInfo, v string) error {
	var err error
	switch f.Type {
	case "long":
		_, err = strconv.ParseInt(v, 10, 64)
	case "integer":
		_, err = strconv.ParseInt(v, 10, 32)
	case "boolean":
		_, err = strconv.ParseBool(v)
	case "date":
		_, err = time.Parse(time.RFC3339Nano, v)
	case "ip":
		_, err = netip.ParseAddr(v)
	case "flattened", "json":
		return fmt.Errorf("%s is %s: copy it from the record with fields, it has no fixed value", f.Name, f.Type)
	default:
		if v == "" {
			return fmt.Errorf("%s: an empty value sets nothing", f.Name)
		}
	}
	if err != nil {
		return fmt.Errorf("%q is not a valid %s for %s: %w", v, f.Type, f.Name, err)
	}
	return nil
}

// closestName suggests the field a typo meant: the nearest by edit distance,
// within two edits.
func closestName(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if abs(len(a)-len(b)) > 2 {
		return 3
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
