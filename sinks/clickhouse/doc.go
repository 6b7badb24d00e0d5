// Package clickhouse is the ClickHouse sink: it writes every event and alert
// as one row of the events or alerts table of a ClickHouse database, over the
// HTTP interface or the native protocol (github.com/ClickHouse/clickhouse-go/v2).
//
// # Schema
//
// The tables are the ones generated from the field registry
// (schemas/clickhouse/*.sql, schemas.ClickHouseDDL): one column per registry
// field, named like the ECS field with dots as underscores, plus hourly
// rollups (AggregatingMergeTree tables fed by materialized views,
// schemas.ClickHouseRollupsDDL). With schema.manage (the default) the sink
// creates the database and tables on its first write and migrates them to
// the registry it was built with (Migrate): ADD COLUMN for every registry
// column a table lacks, ADD INDEX, the configured TTL, the table settings,
// missing views; each migration is recorded in schema_migrations with a
// version and the schema's fingerprint. Migrations only add: a column whose
// type changed stops the sink with an error, for an operator to resolve.
// Database and table names come from the config (validated as plain
// identifiers) and the registry, never from events. Access generates the
// grants of an INSERT-only writer and a read-only analyst role; the hunts
// subpackage holds the analyst queries.
//
// # Rows
//
// A record's body is the event's JSON document in ECS nesting. The sink walks
// it once (gjson, no reflection, no map per event) and appends each value to
// the column of its registry field, converted and checked first: a value of
// the wrong type, an unparseable time or address, a time outside DateTime64's
// range or a missing required field rejects the record before anything
// reaches the client, because one failed Append poisons a clickhouse-go
// batch. A rejected record is a permanent failure (the runner dead-letters
// it) and the rest of the batch is written. Keys the registry does not know
// are ignored. A batch of 256 records or more is converted on up to four
// goroutines. Columns are appended whole (one Append per column per batch),
// arrays and maps row by row, which clickhouse-go does without reflection;
// over HTTP, LowCardinality(String) columns travel as String and the server
// converts them (clickhouse-go's LowCardinality encoder reflects on every
// value).
//
// # Exactly once
//
// JetStream delivers at least once; three things keep a redelivery from
// doubling a row:
//
//   - Every INSERT carries insert_deduplication_token, a hash of its rows'
//     message ids in order, and the tables keep the tokens of their last
//     1000 inserts (non_replicated_deduplication_window): a batch retried
//     as it was (in-process retries after a timeout, say) is dropped by
//     the server.
//   - A redelivered record (delivery count above 1) may come back in a batch
//     cut differently, under a token the server never saw. For those records
//     only, the sink looks their event ids up first (partition-pruned by
//     their timestamps) and skips the ones stored.
//   - The tables are ReplacingMergeTree with event_id last in the sorting
//     key: a duplicate that still gets in (a record published twice beyond
//     JetStream's duplicate window) is merged away in the background, and
//     FINAL hides it at once.
//
// # Errors
//
// A value the server rejects for its data (parse, type and range errors,
// constraint violations) makes the sink split the insert in halves until the
// rejected records are alone, each then a permanent failure. Anything else —
// a connection refused, a timeout, a 5xx, too many parts, a missing table, a
// checked value clickhouse-go refuses (the server's column type differs) —
// fails the whole batch as retryable; a missing table or column and a
// refused value also make the next write check the schema again.
//
// This package must not ack messages, talk to NATS or run SQL built from
// event data: values travel as insert columns and query parameters only.
package clickhouse
