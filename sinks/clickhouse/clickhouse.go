package clickhouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Sink writes events and alerts to the events and alerts tables of one
// ClickHouse database. See the package documentation.
type Sink struct {
	cfg     Config
	log     *slog.Logger
	schema  *Schema
	conn    driver.Conn
	writers map[sink.Kind]*tableWriter

	ensureMu sync.Mutex
	ensured  atomic.Bool
	// noExistsCheck is set once the server refused the redelivery check
	// (the user lacks SELECT on event_id and timestamp); warned once.
	noExistsCheck atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

var _ sink.Sink = (*Sink)(nil)

// New returns a sink for cfg. It does not connect: the connection opens and
// the schema is applied (EnsureSchema) on the first write, so a sink starts
// while ClickHouse is still down and catches up when it is back. A caller
// that wants to fail fast calls EnsureSchema itself.
func New(cfg Config, set sink.Settings) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clickhouse sink: %w", err)
	}
	schema, err := RegistrySchema()
	if err != nil {
		return nil, fmt.Errorf("clickhouse sink: %w", err)
	}
	return newSink(cfg, set, schema, schemas.Fields())
}

func newSink(cfg Config, set sink.Settings, schema *Schema, fields []schemas.FieldInfo) (*Sink, error) {
	opt, err := cfg.options(cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("clickhouse sink: %w", err)
	}
	// clickhouse-go keeps its own logger silent: it logs the normal end of
	// every compressed HTTP response as an error (v2.51.0).
	log := set.LoggerOrDiscard().With("sink", Type, "database", cfg.Database)
	conn, err := clickhouse.Open(opt)
	if err != nil {
		return nil, fmt.Errorf("clickhouse sink: open: %w", err)
	}
	s := &Sink{cfg: cfg, log: log, schema: schema, conn: conn, writers: map[sink.Kind]*tableWriter{}}
	for _, k := range sink.Kinds() {
		w, err := newTableWriter(s, k, fields)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("clickhouse sink: %w", err), conn.Close())
		}
		s.writers[k] = w
	}
	return s, nil
}

// Open opens a client connection to cfg's database as the sink does (same
// server, credentials, TLS, timeouts, compression), for tools and tests
// that read what the sink wrote. It does not dial: the first query does.
func Open(cfg Config) (driver.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	opt, err := cfg.options(cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	conn, err := clickhouse.Open(opt)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open: %w", err)
	}
	return conn, nil
}

// EnsureSchema makes the store ready once per sink: with schema.manage it
// creates the database and migrates the tables (see Migrate); without, it
// compares the tables with the schema and logs what differs. WriteBatch
// calls it first; calling it earlier makes a misconfiguration fail at start.
func (s *Sink) EnsureSchema(ctx context.Context) error {
	if s.ensured.Load() {
		return nil
	}
	s.ensureMu.Lock()
	defer s.ensureMu.Unlock()
	if s.ensured.Load() {
		return nil
	}
	if !s.cfg.Schema.Manage {
		s.verifySchema(ctx)
		s.ensured.Store(true)
		return nil
	}
	if err := s.createDatabase(ctx); err != nil {
		return err
	}
	m, err := Migrate(ctx, s.conn, s.schema, s.cfg.retention())
	if err != nil {
		return fmt.Errorf("clickhouse schema of %s: %w", s.cfg.Database, err)
	}
	if len(m.Statements) > 0 {
		s.log.Info("schema migrated", "version", m.Version, "schema_version", s.schema.Version, "statements", len(m.Statements))
	}
	s.ensured.Store(true)
	return nil
}

func (s *Sink) createDatabase(ctx context.Context) error {
	// A connection without a database: this one may not exist yet.
	opt, err := s.cfg.options("")
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	conn, err := clickhouse.Open(opt)
	if err != nil {
		return fmt.Errorf("clickhouse: open: %w", err)
	}
	// The name was validated as a plain identifier (validateDatabase).
	err = conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.cfg.Database)
	if cerr := conn.Close(); cerr != nil {
		s.log.Debug("close the schema connection", "err", cerr)
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", s.cfg.Database, err)
	}
	return nil
}

// verifySchema is the check of an unmanaged schema: it reports, never fails.
// A user with INSERT only may not see the system tables at all, and the
// inserts are the real test.
func (s *Sink) verifySchema(ctx context.Context) {
	live, err := readLive(ctx, s.conn)
	if err != nil {
		s.log.Warn("cannot read the tables to check them (schema.manage is off); writing anyway", "err", err)
		return
	}
	stmts, problems := s.schema.Plan(live, s.cfg.retention())
	for _, p := range problems {
		s.log.Error("schema differs from the registry", "err", p)
	}
	if len(stmts) > 0 {
		s.log.Warn("schema is behind the registry (schema.manage is off): apply these statements as a user with DDL rights",
			"statements", strings.Join(stmts, ";\n"))
	}
}

// WriteBatch converts every record into a row of its table and inserts the
// rows of each table in one INSERT, with a deduplication token derived from
// their message ids. A record that cannot be converted, or that the server
// rejects for its data, fails permanently and the rest is written; any other
// failure fails the batch, to be retried.
func (s *Sink) WriteBatch(ctx context.Context, batch []sink.Record) error {
	if err := s.EnsureSchema(ctx); err != nil {
		return err
	}
	be := sink.NewBatchError()
	for _, k := range sink.Kinds() {
		if err := s.writers[k].write(ctx, batch, be); err != nil {
			return err
		}
	}
	for i, r := range batch {
		if r.Kind != sink.KindEvents && r.Kind != sink.KindAlerts {
			be.Failed(i, sink.Permanent(fmt.Errorf("record %s: unknown stream kind %d", r.ID, r.Kind)))
		}
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

// Close closes the connections. Every write already returned: nothing is
// buffered. It is safe to call twice.
func (s *Sink) Close(context.Context) error {
	s.closeOnce.Do(func() {
		if err := s.conn.Close(); err != nil {
			s.closeErr = fmt.Errorf("clickhouse sink: close: %w", err)
		}
	})
	return s.closeErr
}

// tableWriter writes the records of one stream to its table. WriteBatch is
// never called concurrently for one stream; the mutex makes that a rule
// rather than an assumption.
type tableWriter struct {
	s      *Sink
	kind   sink.Kind
	table  string // db.table, from validated identifiers only
	insert string
	exists string
	cols   []clickhouse.ColumnNameAndType
	b      *rowBuilder

	mu     sync.Mutex
	parts  []*rowBuilder // per conversion worker
	idx    []int         // the batch index of each record of w's stream
	errs   []error       // the conversion error of each of them
	recIdx []int         // the batch index of each row
	msgIDs []string      // the message id of each row
	keep   []bool
}

func newTableWriter(s *Sink, k sink.Kind, fields []schemas.FieldInfo) (*tableWriter, error) {
	name := k.String() // "events", "alerts": the table names
	m, err := newTableMap(name, fields)
	if err != nil {
		return nil, err
	}
	w := &tableWriter{s: s, kind: k, table: s.cfg.Database + "." + name, b: newRowBuilder(m)}
	names := make([]string, len(m.columns))
	for i, c := range m.columns {
		names[i] = c.Name
		w.cols = append(w.cols, clickhouse.ColumnNameAndType{Name: c.Name, Type: wireType(c.Type)})
	}
	w.insert = "INSERT INTO " + w.table + " (" + strings.Join(names, ", ") + ")"
	w.exists = "SELECT event_id FROM " + w.table +
		" WHERE timestamp >= {lo:DateTime64(3, 'UTC')} AND timestamp <= {hi:DateTime64(3, 'UTC')} AND event_id IN {ids:Array(String)}"
	return w, nil
}

// wireType is the type a column is sent as over HTTP, where the client
// declares the block's types itself: LowCardinality(String) travels as
// String, which the server turns into LowCardinality on insert (as it does
// for any client that does not speak LowCardinality). clickhouse-go builds
// a LowCardinality dictionary through reflection and an interface per
// value; a String column is appended as a plain copy, half the client's
// cost of a batch. Over the native protocol the server's header decides and
// this is not used.
func wireType(t string) string { return strings.ReplaceAll(t, "LowCardinality(String)", "String") }

// write inserts the batch's records of w's stream, recording in be the ones
// that failed for good; a returned error fails every record.
func (w *tableWriter) write(ctx context.Context, batch []sink.Record, be *sink.BatchError) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.convert(batch)
	w.recIdx, w.msgIDs = w.recIdx[:0], w.msgIDs[:0]
	redelivered := false
	row := 0
	for j, i := range w.idx {
		r := &batch[i]
		if err := w.errs[j]; err != nil {
			be.Failed(i, sink.Permanent(fmt.Errorf("%s record %s: %w", w.table, r.ID, err)))
			continue
		}
		id := r.ID
		if id == "" {
			id = w.b.ID(row)
		}
		w.recIdx = append(w.recIdx, i)
		w.msgIDs = append(w.msgIDs, id)
		redelivered = redelivered || r.Delivered > 1
		row++
	}
	// Keep no reference to this batch's documents past the call.
	defer w.release()
	if w.b.Rows() > 0 && redelivered {
		if err := w.skipStored(ctx, batch); err != nil {
			return err
		}
	}
	if w.b.Rows() == 0 {
		return nil
	}
	return w.insertRange(ctx, 0, w.b.Rows(), be)
}

// release drops every reference to the last batch, keeping the memory.
func (w *tableWriter) release() {
	clear(w.msgIDs)
	clear(w.errs)
	w.b.Reset()
	for _, p := range w.parts {
		p.Reset()
	}
}

// Conversion runs on up to maxConvertWorkers goroutines, each taking a
// contiguous share of at least minPerWorker records: converting is most of
// the client's work on a batch, and the server waits for it.
const (
	maxConvertWorkers = 4
	minPerWorker      = 128
)

// convert turns the batch's records of w's stream into w.b's rows, in
// order, and sets w.errs[j] for the j-th such record that cannot be
// converted (w.idx[j] is its batch index).
func (w *tableWriter) convert(batch []sink.Record) {
	w.idx = w.idx[:0]
	for i := range batch {
		if batch[i].Kind == w.kind {
			w.idx = append(w.idx, i)
		}
	}
	n := len(w.idx)
	w.errs = slices.Grow(w.errs[:0], n)[:n]
	w.b.Reset()
	workers := min(runtime.GOMAXPROCS(0), maxConvertWorkers, n/minPerWorker)
	if workers <= 1 {
		for j, i := range w.idx {
			w.errs[j] = w.b.Add(batch[i].Data)
		}
		return
	}
	for len(w.parts) < workers {
		w.parts = append(w.parts, newRowBuilder(w.b.m))
	}
	share := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for p := range workers {
		lo, hi := p*share, min(n, (p+1)*share)
		part := w.parts[p]
		part.Reset()
		wg.Go(func() {
			for j := lo; j < hi; j++ {
				w.errs[j] = part.Add(batch[w.idx[j]].Data)
			}
		})
	}
	wg.Wait()
	for p := range workers {
		w.b.AppendFrom(w.parts[p])
	}
}

// skipStored drops the redelivered rows the table already holds: a crash
// after an insert and before its acks redelivers records in batches cut
// differently, whose token the server has never seen. Only redeliveries are
// looked up, so the normal path never reads.
func (w *tableWriter) skipStored(ctx context.Context, batch []sink.Record) error {
	if w.s.noExistsCheck.Load() {
		return nil
	}
	var ids []string
	var lo, hi time.Time
	for row, i := range w.recIdx {
		if batch[i].Delivered <= 1 {
			continue
		}
		ids = append(ids, w.b.ID(row))
		t := w.b.Time(row)
		if lo.IsZero() || t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	stored := map[string]bool{}
	const chunk = 1000
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		qctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
			"lo":  lo.Format(chTimeLayout),
			"hi":  hi.Format(chTimeLayout),
			"ids": stringArrayParam(part),
		}))
		if err := w.queryIDs(qctx, stored); err != nil {
			var ex *clickhouse.Exception
			if errors.As(err, &ex) && ex.Code == codeAccessDenied {
				w.s.noExistsCheck.Store(true)
				w.s.log.Warn("cannot look up redelivered records (grant SELECT(event_id, timestamp) to the sink's user); "+
					"relying on insert deduplication and ReplacingMergeTree", "table", w.table, "err", err)
				return nil
			}
			return fmt.Errorf("look up redelivered records in %s: %w", w.table, err)
		}
	}
	if len(stored) == 0 {
		return nil
	}
	w.keep = w.keep[:0]
	for row := range w.recIdx {
		w.keep = append(w.keep, !(batch[w.recIdx[row]].Delivered > 1 && stored[w.b.ID(row)]))
	}
	w.b.Keep(w.keep)
	w.recIdx = compact(w.recIdx, w.keep)
	w.msgIDs = compact(w.msgIDs, w.keep)
	w.s.log.Info("redelivered records already stored: not inserted again", "table", w.table, "records", len(stored))
	return nil
}

func (w *tableWriter) queryIDs(ctx context.Context, into map[string]bool) error {
	rows, err := w.s.conn.Query(ctx, w.exists)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		into[id] = true
	}
	return rows.Err()
}

// insertRange inserts rows [lo, hi). When the server rejects the data
// itself, it splits the range in halves until the rejected rows are
// alone, each then a permanent failure of its record; the halves carry
// tokens of their own, the same on every retry, so a retry of a half-written
// split writes nothing twice.
func (w *tableWriter) insertRange(ctx context.Context, lo, hi int, be *sink.BatchError) error {
	err := w.send(ctx, lo, hi)
	if err == nil || !isDataError(err) {
		return err
	}
	if hi-lo == 1 {
		be.Failed(w.recIdx[lo], sink.Permanent(fmt.Errorf("%s rejected record %s: %w", w.table, w.msgIDs[lo], err)))
		return nil
	}
	w.s.log.Warn("insert rejected for its data: splitting it to find the records", "table", w.table, "rows", hi-lo, "err", err)
	mid := lo + (hi-lo)/2
	if err := w.insertRange(ctx, lo, mid, be); err != nil {
		return err
	}
	return w.insertRange(ctx, mid, hi, be)
}

// send inserts rows [lo, hi) in one INSERT.
func (w *tableWriter) send(ctx context.Context, lo, hi int) error {
	settings := clickhouse.Settings{
		"insert_deduplication_token": dedupToken(w.msgIDs[lo:hi]),
		// A copy dropped by the token is dropped in the rollups too.
		"deduplicate_blocks_in_dependent_materialized_views": 1,
	}
	if w.s.cfg.AsyncInsert {
		settings["async_insert"] = 1
		settings["wait_for_async_insert"] = 1
		settings["async_insert_deduplicate"] = 1
	}
	ictx := clickhouse.Context(ctx, clickhouse.WithSettings(settings), clickhouse.WithColumnNamesAndTypes(w.cols))
	batch, err := w.s.conn.PrepareBatch(ictx, w.insert)
	if err != nil {
		return w.classify(fmt.Errorf("prepare insert into %s: %w", w.table, err))
	}
	defer abortBatch(batch, w.s.log)
	if err := w.appendColumns(batch, lo, hi); err != nil {
		// Every value was checked against its registry type, so the
		// column's type on the server differs (the native protocol takes
		// the server's): a schema problem, retried after a fresh check,
		// never a reason to dead-letter the records.
		w.s.ensured.Store(false)
		return err
	}
	if err := batch.Send(); err != nil {
		return w.classify(fmt.Errorf("insert %d rows into %s: %w", hi-lo, w.table, err))
	}
	return nil
}

// appendColumns appends rows [lo, hi) to batch, column by column.
func (w *tableWriter) appendColumns(batch driver.Batch, lo, hi int) error {
	for i := range w.b.cols {
		col := &w.b.cols[i]
		bc := batch.Column(i)
		if col.rowWise() {
			for r := lo; r < hi; r++ {
				if err := bc.AppendRow(col.row(r)); err != nil {
					return fmt.Errorf("append %s to column %s of %s: %w", w.msgIDs[r], w.cols[i].Name, w.table, err)
				}
			}
			continue
		}
		if err := bc.Append(col.slice(lo, hi)); err != nil {
			return fmt.Errorf("append column %s of %s: %w", w.cols[i].Name, w.table, err)
		}
	}
	return nil
}

// abortBatch releases the connection of a batch that was not sent (an
// append failed); after Send there is nothing to release.
func abortBatch(b driver.Batch, log *slog.Logger) {
	if err := b.Abort(); err != nil && !errors.Is(err, clickhouse.ErrBatchAlreadySent) && log != nil {
		log.Debug("abort insert", "err", err)
	}
}

// classify marks the schema for another check when the server says a table
// or column is missing (someone dropped it), and passes err on.
func (w *tableWriter) classify(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case codeNoSuchColumn, codeUnknownTable, codeUnknownDatabase:
			w.s.ensured.Store(false)
		}
	}
	return err
}

// ClickHouse error codes the sink tells apart (src/Common/ErrorCodes.cpp).
const (
	codeNoSuchColumn    = 16
	codeUnknownTable    = 60
	codeUnknownDatabase = 81
	codeAccessDenied    = 497
)

// dataCodes are the server errors that reject an insert for the values in
// it, not for the state of the server: retrying the same rows cannot help.
var dataCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	38:  true, // CANNOT_PARSE_DATE
	41:  true, // CANNOT_PARSE_DATETIME
	53:  true, // TYPE_MISMATCH
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	72:  true, // CANNOT_PARSE_NUMBER
	117: true, // INCORRECT_DATA
	131: true, // TOO_LARGE_STRING_SIZE
	321: true, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
	469: true, // VIOLATED_CONSTRAINT
}

func isDataError(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && dataCodes[ex.Code]
}

// dedupToken is the insert_deduplication_token of a set of rows: a hash of
// their message ids in order. The same rows retried carry the same token,
// and the server drops the copy (non_replicated_deduplication_window).
func dedupToken(ids []string) string {
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return "crowsnest-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// chTimeLayout is how a DateTime64(3) query parameter is written.
const chTimeLayout = "2006-01-02 15:04:05.000"

// stringArrayParam writes ids as an Array(String) query parameter value:
// a ClickHouse array literal with every string quoted and escaped. It is a
// parameter value, parsed by the server as data, never part of the SQL.
func stringArrayParam(ids []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\'')
		for j := 0; j < len(id); j++ {
			switch c := id[j]; c {
			case '\\', '\'':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\t':
				b.WriteString(`\t`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case 0:
				b.WriteString(`\0`)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('\'')
	}
	b.WriteByte(']')
	return b.String()
}
