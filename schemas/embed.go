package schemas

import (
	"embed"
	"fmt"
)

// The generated Elasticsearch templates, compiled into every binary that
// imports this package, so a sink installs exactly what fields.yml says
// without reading files at run time.
//
//go:embed elasticsearch/*.json
var elasticsearchFiles embed.FS

// The generated ClickHouse DDL, for the same reason.
//
//go:embed clickhouse/*.sql
var clickhouseFiles embed.FS

// ElasticsearchTemplates returns the generated Elasticsearch component
// template (the mappings) and index template (the data stream, composed of
// that component) for one document kind, "events" or "alerts", as JSON
// bodies for PUT _component_template/<name> and PUT _index_template/<name>.
// The index template names its component in composed_of and its data
// streams in index_patterns. The slices are fresh copies.
func ElasticsearchTemplates(kind string) (component, index []byte, err error) {
	switch kind {
	case "events", "alerts":
	default:
		return nil, nil, fmt.Errorf("elasticsearch templates: unknown kind %q (want events or alerts)", kind)
	}
	if component, err = elasticsearchFiles.ReadFile("elasticsearch/" + kind + "-component-template.json"); err != nil {
		return nil, nil, fmt.Errorf("elasticsearch templates: %w", err)
	}
	if index, err = elasticsearchFiles.ReadFile("elasticsearch/" + kind + "-index-template.json"); err != nil {
		return nil, nil, fmt.Errorf("elasticsearch templates: %w", err)
	}
	return component, index, nil
}

// ClickHouseDDL returns the generated CREATE TABLE IF NOT EXISTS statement
// for one table, "events" or "alerts", as written to schemas/clickhouse/: a
// header of "--" comment lines, then one statement ending in ";". The table
// name is unqualified: run it in the database that holds the tables. The
// slice is a fresh copy.
func ClickHouseDDL(table string) ([]byte, error) {
	switch table {
	case "events", "alerts":
	default:
		return nil, fmt.Errorf("clickhouse ddl: unknown table %q (want events or alerts)", table)
	}
	ddl, err := clickhouseFiles.ReadFile("clickhouse/" + table + ".sql")
	if err != nil {
		return nil, fmt.Errorf("clickhouse ddl: %w", err)
	}
	return ddl, nil
}

// ClickHouseRollupsDDL returns the generated hourly rollups
// (schemas/clickhouse/rollups.sql): for each, a CREATE TABLE IF NOT EXISTS
// of its AggregatingMergeTree and the CREATE MATERIALIZED VIEW IF NOT EXISTS
// that feeds it from the events or alerts table, each statement ending in
// ";" and separated by a blank line, after a header of "--" comment lines.
// Names are unqualified. The slice is a fresh copy.
func ClickHouseRollupsDDL() ([]byte, error) {
	ddl, err := clickhouseFiles.ReadFile("clickhouse/rollups.sql")
	if err != nil {
		return nil, fmt.Errorf("clickhouse rollups ddl: %w", err)
	}
	return ddl, nil
}
