// Package gen reads the field registry (fields.yml) and renders everything
// derived from it: Go types, ClickHouse DDL, Elasticsearch templates and the
// field reference. It is used by `make generate` and by the staleness test;
// nothing at run time imports it.
package gen

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Registry is fields.yml decoded.
type Registry struct {
	SchemaVersion string         `yaml:"schema_version"`
	ECSVersion    string         `yaml:"ecs_version"`
	Fields        []Field        `yaml:"fields"`
	ClickHouse    ClickHouseSpec `yaml:"clickhouse"`
	Elasticsearch ElasticSpec    `yaml:"elasticsearch"`
}

// Field is one registry entry.
type Field struct {
	Name           string `yaml:"name"`
	Type           string `yaml:"type"`
	Array          bool   `yaml:"array"`
	Nullable       bool   `yaml:"nullable"`
	Required       bool   `yaml:"required"`
	AlertOnly      bool   `yaml:"alert_only"`
	LowCardinality bool   `yaml:"low_cardinality"`
	Index          string `yaml:"index"`
	ESIndex        *bool  `yaml:"es_index"`
	OCSF           string `yaml:"ocsf"`
	Description    string `yaml:"description"`
}

// ClickHouseSpec is the table layout block.
type ClickHouseSpec struct {
	Database string               `yaml:"database"`
	Tables   map[string]TableSpec `yaml:"tables"`
	Rollups  []RollupSpec         `yaml:"rollups"`
}

// RollupSpec is an hourly rollup of one table: a materialized view feeding
// an AggregatingMergeTree with the rows and distinct event ids per hour and
// group.
type RollupSpec struct {
	Name    string   `yaml:"name"`
	Table   string   `yaml:"table"`
	GroupBy []string `yaml:"group_by"`
	TTLDays int      `yaml:"ttl_days"`
}

// TableSpec describes one MergeTree table.
type TableSpec struct {
	Engine      string   `yaml:"engine"`
	PartitionBy string   `yaml:"partition_by"`
	OrderBy     []string `yaml:"order_by"`
	TTL         string   `yaml:"ttl"`
}

// ElasticSpec names the data streams.
type ElasticSpec struct {
	DataStreams map[string]string `yaml:"data_streams"`
}

var (
	validTypes = map[string]bool{"keyword": true, "text": true, "long": true, "integer": true,
		"boolean": true, "date": true, "ip": true, "flattened": true, "json": true}
	namePattern = regexp.MustCompile(`^(@timestamp|[a-z][a-z0-9_]*(\.[a-zA-Z][a-zA-Z0-9_]*)*)$`)
)

// Parse decodes and validates a registry strictly: unknown keys, duplicate
// names, a field that is also a group, and impossible type combinations are errors.
func Parse(data []byte) (*Registry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var r Registry
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode registry: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *Registry) validate() error {
	var errs []error
	if r.SchemaVersion == "" {
		errs = append(errs, errors.New("schema_version: required"))
	}
	seen := map[string]bool{}
	columns := map[string]string{}
	for i, f := range r.Fields {
		at := fmt.Sprintf("fields[%d] %q", i, f.Name)
		if !namePattern.MatchString(f.Name) {
			errs = append(errs, fmt.Errorf("%s: name must be dotted lower-case segments", at))
		}
		if seen[f.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name", at))
		}
		seen[f.Name] = true
		if !validTypes[f.Type] {
			errs = append(errs, fmt.Errorf("%s: unknown type %q", at, f.Type))
		}
		if f.Nullable && (f.Array || (f.Type != "long" && f.Type != "integer" && f.Type != "boolean")) {
			errs = append(errs, fmt.Errorf("%s: nullable applies to scalar long, integer and boolean only", at))
		}
		if f.Array && f.Type != "keyword" && f.Type != "text" && f.Type != "ip" {
			errs = append(errs, fmt.Errorf("%s: type %s cannot be an array", at, f.Type))
		}
		if f.Index != "" && f.Index != "bloom" && f.Index != "tokens" {
			errs = append(errs, fmt.Errorf("%s: index must be bloom or tokens", at))
		}
		if f.Description == "" {
			errs = append(errs, fmt.Errorf("%s: description required", at))
		}
		col := ColumnName(f.Name)
		if other, ok := columns[col]; ok {
			errs = append(errs, fmt.Errorf("%s: ClickHouse column %s collides with %q", at, col, other))
		}
		columns[col] = f.Name
	}
	// A name may not be both a leaf and a group ("a.b" and "a.b.c").
	for name := range seen {
		for i := strings.IndexByte(name, '.'); i > 0; i = nextDot(name, i) {
			if seen[name[:i]] {
				errs = append(errs, fmt.Errorf("field %q: %q is a field, so it cannot also be a group", name, name[:i]))
			}
		}
	}
	for _, t := range []string{"events", "alerts"} {
		ts, ok := r.ClickHouse.Tables[t]
		if !ok {
			errs = append(errs, fmt.Errorf("clickhouse.tables.%s: required", t))
			continue
		}
		if ts.Engine == "" || ts.PartitionBy == "" || len(ts.OrderBy) == 0 {
			errs = append(errs, fmt.Errorf("clickhouse.tables.%s: engine, partition_by and order_by are required", t))
		}
		if _, ok := r.Elasticsearch.DataStreams[t]; !ok {
			errs = append(errs, fmt.Errorf("elasticsearch.data_streams.%s: required", t))
		}
	}
	errs = append(errs, r.validateRollups(columns)...)
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func nextDot(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// ColumnName is the ClickHouse column for a field: dots become underscores
// and the leading @ is dropped, so analysts never need backquotes.
func ColumnName(name string) string {
	name = strings.TrimPrefix(name, "@")
	return strings.ReplaceAll(name, ".", "_")
}

// InEvents reports whether the field belongs to event documents.
func (f Field) InEvents() bool { return !f.AlertOnly }

// ESIndexed reports whether Elasticsearch indexes the field.
func (f Field) ESIndexed() bool { return f.ESIndex == nil || *f.ESIndex }

var identPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// validateRollups checks the rollups against the columns (column → field).
func (r *Registry) validateRollups(columns map[string]string) []error {
	var errs []error
	seen := map[string]bool{}
	fields := map[string]*Field{}
	for i := range r.Fields {
		fields[r.Fields[i].Name] = &r.Fields[i]
	}
	for i, ru := range r.ClickHouse.Rollups {
		at := fmt.Sprintf("clickhouse.rollups[%d] %q", i, ru.Name)
		if !identPattern.MatchString(ru.Name) || ru.Name == "events" || ru.Name == "alerts" || seen[ru.Name] {
			errs = append(errs, fmt.Errorf("%s: name must be a new lower-case identifier", at))
		}
		seen[ru.Name] = true
		if ru.Table != "events" && ru.Table != "alerts" {
			errs = append(errs, fmt.Errorf("%s: table must be events or alerts", at))
		}
		if len(ru.GroupBy) == 0 || ru.TTLDays < 1 {
			errs = append(errs, fmt.Errorf("%s: group_by and ttl_days are required", at))
		}
		for _, c := range ru.GroupBy {
			f := fields[columns[c]]
			switch {
			case f == nil:
				errs = append(errs, fmt.Errorf("%s: group_by %s is not a column", at, c))
			case ru.Table == "events" && !f.InEvents():
				errs = append(errs, fmt.Errorf("%s: group_by %s is alert-only", at, c))
			case f.Array || f.Type == "flattened" || f.Type == "json":
				errs = append(errs, fmt.Errorf("%s: group_by %s is not a scalar", at, c))
			}
		}
	}
	return errs
}
