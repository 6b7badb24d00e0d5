// Package query runs crowsnest's named hunts — the analyst queries of
// sinks/clickhouse/hunts — on the store an analyst has: ClickHouse (the
// hunt's SQL, parameters bound by the server) or Elasticsearch (a query DSL
// request with aggregations built per hunt, values bound as JSON values),
// returning the same columns, typed the same way, from either. It formats
// a result as an aligned table or JSON lines.
//
// The catalogue is the hunts package's SQL files (name, description,
// parameters, columns); this package adds one Elasticsearch implementation
// per hunt and refuses to build a catalogue where the two lists differ.
//
// It must not write to either store, and never pastes a user's value into
// a query's text.
package query
