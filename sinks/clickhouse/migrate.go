package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MigrationsTable records every migration applied to a database.
const MigrationsTable = "schema_migrations"

const migrationsDDL = `CREATE TABLE IF NOT EXISTS ` + MigrationsTable + `
(
    version UInt32 COMMENT 'one more than the previous migration',
    schema_version LowCardinality(String) COMMENT 'the field registry version migrated to',
    fingerprint String COMMENT 'the schema content migrated to (Schema.Fingerprint)',
    statements Array(String) COMMENT 'what was run, in order',
    applied_at DateTime64(3, 'UTC'),
    applied_by String COMMENT 'host name of the process that applied it'
)
ENGINE = MergeTree
ORDER BY version`

// Migration is what Migrate did.
type Migration struct {
	// Version is the schema_migrations version recorded, or the latest one
	// when nothing was to be done.
	Version uint32
	// Statements are the statements run; none when the store was current.
	Statements []string
}

// Migrate brings the tables of conn's database to s, idempotently: it
// reads the live tables (system.tables, system.columns,
// system.data_skipping_indices), plans the statements that are missing
// (Schema.Plan: CREATE TABLE, ADD COLUMN, ADD INDEX, TTL, settings), runs
// them in order, and records them in schema_migrations as the next version,
// with the schema's fingerprint. A store already at s runs and records
// nothing. A column whose type differs from the schema stops it before any
// statement runs. Two processes migrating at once both succeed (every
// statement is IF NOT EXISTS or absolute) and may record the same version
// twice.
func Migrate(ctx context.Context, conn driver.Conn, s *Schema, keep Retention) (*Migration, error) {
	live, err := readLive(ctx, conn)
	if err != nil {
		return nil, err
	}
	stmts, problems := s.Plan(live, keep)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if err := conn.Exec(ctx, migrationsDDL); err != nil {
		return nil, fmt.Errorf("create %s: %w", MigrationsTable, err)
	}
	last, lastFP, err := lastMigration(ctx, conn)
	if err != nil {
		return nil, err
	}
	fp := s.Fingerprint()
	if len(stmts) == 0 && lastFP == fp {
		return &Migration{Version: last}, nil
	}
	for _, stmt := range stmts {
		if err := conn.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", firstLine(stmt), err)
		}
	}
	m := &Migration{Version: last + 1, Statements: stmts}
	if err := recordMigration(ctx, conn, m, s.Version, fp); err != nil {
		return nil, err
	}
	return m, nil
}

// readLive describes the tables of the connection's database.
func readLive(ctx context.Context, conn driver.Conn) (map[string]*liveTable, error) {
	live := map[string]*liveTable{}
	rows, err := conn.Query(ctx, "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		return nil, fmt.Errorf("read system.tables: %w", err)
	}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read system.tables: %w", err)
		}
		live[name] = &liveTable{columns: map[string]string{}, indexes: map[string]bool{}, engineFull: engine}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("read system.tables: %w", err)
	}
	rows, err = conn.Query(ctx, "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() ORDER BY table, position")
	if err != nil {
		return nil, fmt.Errorf("read system.columns: %w", err)
	}
	for rows.Next() {
		var table, name, typ string
		if err := rows.Scan(&table, &name, &typ); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read system.columns: %w", err)
		}
		if t := live[table]; t != nil {
			t.columns[name] = typ
			t.order = append(t.order, name)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("read system.columns: %w", err)
	}
	rows, err = conn.Query(ctx, "SELECT table, name FROM system.data_skipping_indices WHERE database = currentDatabase()")
	if err != nil {
		return nil, fmt.Errorf("read system.data_skipping_indices: %w", err)
	}
	for rows.Next() {
		var table, name string
		if err := rows.Scan(&table, &name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read system.data_skipping_indices: %w", err)
		}
		if t := live[table]; t != nil {
			t.indexes[name] = true
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("read system.data_skipping_indices: %w", err)
	}
	return live, nil
}

func lastMigration(ctx context.Context, conn driver.Conn) (version uint32, fingerprint string, err error) {
	rows, err := conn.Query(ctx, "SELECT version, fingerprint FROM "+MigrationsTable+" ORDER BY version DESC, applied_at DESC LIMIT 1")
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", MigrationsTable, err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&version, &fingerprint); err != nil {
			return 0, "", fmt.Errorf("read %s: %w", MigrationsTable, err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("read %s: %w", MigrationsTable, err)
	}
	return version, fingerprint, nil
}

func recordMigration(ctx context.Context, conn driver.Conn, m *Migration, schemaVersion, fingerprint string) error {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	stmts := m.Statements
	if stmts == nil {
		stmts = []string{}
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+MigrationsTable+" (version, schema_version, fingerprint, statements, applied_at, applied_by)")
	if err != nil {
		return fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	defer abortBatch(batch, nil)
	if err := batch.Append(m.Version, schemaVersion, fingerprint, stmts, time.Now().UTC(), host); err != nil {
		return fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	return nil
}

func firstLine(s string) string {
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
