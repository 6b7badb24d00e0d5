// Package hunts is crowsnest's library of analyst queries for ClickHouse:
// one SQL file per hunt (exec into pod timeline, privileged workloads,
// RBAC changes by user, top talkers to new destinations, alerts by rule per
// hour), embedded and versioned with the schema they read. Each file starts
// with comment lines naming its title, description, the registry schema
// version it was written for, its parameters and its output columns (name,
// type, doc: the contract a hunt keeps on every backend); the parameters are
// ClickHouse query parameters ({name:Type}), so values reach the server as
// typed data and are never pasted into the SQL.
//
// The tables are unqualified: run a hunt on a connection to the database
// the sink writes (clickhouse.Open, or clickhouse-client --database).
// Every hunt is tested against the engine with fixture events written
// through the sink.
//
// This package only names and checks queries; it must not connect.
package hunts
