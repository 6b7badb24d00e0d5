package clickhouse

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Schema is what the store must hold: the tables of the field registry as
// their generated DDL (schemas/clickhouse/*.sql) and the columns, indexes,
// retention and settings read from it. Its statements name tables
// unqualified: they run in the sink's database.
type Schema struct {
	// Version is the field registry's schema version.
	Version string
	// Tables are events, alerts, then the rollup tables.
	Tables []Table
	// Views are the materialized views that feed the rollups.
	Views []View
}

// View is a materialized view of the schema.
type View struct {
	Name string
	// DDL is the generated CREATE MATERIALIZED VIEW IF NOT EXISTS statement.
	DDL string
}

// Table is one table of the schema.
type Table struct {
	// Name is the unqualified table name ("events").
	Name string
	// DDL is the generated CREATE TABLE IF NOT EXISTS statement, without its
	// header comments and final semicolon.
	DDL     string
	Columns []Column
	Indexes []Index
	// TTL is the retention in the DDL: TTLBase + INTERVAL TTLDays DAY.
	// TTLDays is 0 when the DDL has no TTL.
	TTLBase string
	TTLDays int
	// Settings are the DDL's table settings, "name = value", in order.
	Settings []string
}

// Column is one column of a table.
type Column struct {
	Name string
	// Type is the ClickHouse type ("LowCardinality(String)").
	Type string
	// Definition is the column as the DDL declares it: name, type, codec
	// and comment. ADD COLUMN uses it verbatim.
	Definition string
}

// Index is one data-skipping index of a table.
type Index struct {
	Name       string
	Definition string // "idx_x x TYPE bloom_filter(0.01) GRANULARITY 4"
}

// Table returns the table called name, or nil.
func (s *Schema) Table(name string) *Table {
	for i := range s.Tables {
		if s.Tables[i].Name == name {
			return &s.Tables[i]
		}
	}
	return nil
}

// Fingerprint identifies the schema's content: the registry version and
// every statement it is made of. Two schemas with the same fingerprint
// migrate a store to the same state.
func (s *Schema) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte(s.Version))
	for _, t := range s.Tables {
		h.Write([]byte{0})
		h.Write([]byte(t.DDL))
	}
	for _, v := range s.Views {
		h.Write([]byte{0})
		h.Write([]byte(v.DDL))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// RegistrySchema returns the schema generated from the field registry, and
// checks it against the registry's field list (schemas.Fields), which the
// sink maps documents with: the two must name the same columns with the
// same types, or every insert would fail.
func RegistrySchema() (*Schema, error) {
	s := &Schema{Version: schemas.SchemaVersion}
	fields := schemas.Fields()
	for _, name := range []string{"events", "alerts"} {
		ddl, err := schemas.ClickHouseDDL(name)
		if err != nil {
			return nil, err
		}
		t, err := ParseTableDDL(name, string(ddl))
		if err != nil {
			return nil, err
		}
		if err := checkAgainstFields(t, fields); err != nil {
			return nil, err
		}
		s.Tables = append(s.Tables, *t)
	}
	rollups, err := schemas.ClickHouseRollupsDDL()
	if err != nil {
		return nil, err
	}
	if err := s.addRollups(string(rollups)); err != nil {
		return nil, err
	}
	return s, nil
}

// addRollups reads the generated rollups: statements ended by ";" at the
// end of a line, each a CREATE TABLE or a CREATE MATERIALIZED VIEW.
func (s *Schema) addRollups(ddl string) error {
	var body []string
	for line := range strings.SplitSeq(ddl, "\n") {
		if !strings.HasPrefix(line, "--") {
			body = append(body, line)
		}
	}
	for stmt := range strings.SplitSeq(strings.Join(body, "\n"), ";\n") {
		stmt = strings.TrimSpace(stmt)
		first, _, _ := strings.Cut(stmt, "\n")
		switch {
		case stmt == "":
		case strings.HasPrefix(first, "CREATE TABLE IF NOT EXISTS "):
			t, err := ParseTableDDL(strings.TrimPrefix(first, "CREATE TABLE IF NOT EXISTS "), stmt)
			if err != nil {
				return fmt.Errorf("rollups: %w", err)
			}
			s.Tables = append(s.Tables, *t)
		case strings.HasPrefix(first, "CREATE MATERIALIZED VIEW IF NOT EXISTS "):
			name, _, _ := strings.Cut(strings.TrimPrefix(first, "CREATE MATERIALIZED VIEW IF NOT EXISTS "), " ")
			if !identRE.MatchString(name) {
				return fmt.Errorf("rollups: view name %q", name)
			}
			s.Views = append(s.Views, View{Name: name, DDL: strings.TrimSuffix(stmt, ";")})
		default:
			return fmt.Errorf("rollups: unexpected statement %q", first)
		}
	}
	return nil
}

func checkAgainstFields(t *Table, fields []schemas.FieldInfo) error {
	var want []Column
	for _, f := range fields {
		if t.Name == "events" && f.AlertOnly {
			continue
		}
		want = append(want, Column{Name: f.Column, Type: f.ClickHouseType})
	}
	if len(want) != len(t.Columns) {
		return fmt.Errorf("table %s: the DDL has %d columns, the registry %d: regenerate the schema", t.Name, len(t.Columns), len(want))
	}
	for i, c := range want {
		if t.Columns[i].Name != c.Name || t.Columns[i].Type != c.Type {
			return fmt.Errorf("table %s: DDL column %d is %s %s, the registry says %s %s: regenerate the schema",
				t.Name, i, t.Columns[i].Name, t.Columns[i].Type, c.Name, c.Type)
		}
	}
	return nil
}

var (
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	ttlRE   = regexp.MustCompile(`^TTL (.+) \+ INTERVAL (\d+) DAY$`)
)

// ParseTableDDL reads a generated CREATE TABLE statement: the layout the
// generator writes (schemas/internal/gen), one column or index per line.
func ParseTableDDL(name, ddl string) (*Table, error) {
	t := &Table{Name: name}
	var stmt []string
	inBody := false
	for line := range strings.SplitSeq(strings.TrimRight(ddl, "\n"), "\n") {
		if strings.HasPrefix(line, "--") && len(stmt) == 0 {
			continue
		}
		stmt = append(stmt, line)
		switch {
		case len(stmt) == 1:
			if line != "CREATE TABLE IF NOT EXISTS "+name {
				return nil, fmt.Errorf("table %s: DDL starts with %q, want CREATE TABLE IF NOT EXISTS %s", name, line, name)
			}
		case line == "(":
			inBody = true
		case line == ")":
			inBody = false
		case inBody:
			def := strings.TrimSuffix(strings.TrimSpace(line), ",")
			if idx, ok := strings.CutPrefix(def, "INDEX "); ok {
				iname, _, _ := strings.Cut(idx, " ")
				t.Indexes = append(t.Indexes, Index{Name: iname, Definition: idx})
				continue
			}
			col, err := parseColumn(def)
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", name, err)
			}
			t.Columns = append(t.Columns, col)
		case strings.HasPrefix(line, "TTL "):
			m := ttlRE.FindStringSubmatch(strings.TrimSuffix(line, ";"))
			if m == nil {
				return nil, fmt.Errorf("table %s: TTL %q is not <expr> + INTERVAL <n> DAY", name, line)
			}
			t.TTLBase = m[1]
			t.TTLDays, _ = strconv.Atoi(m[2])
		case strings.HasPrefix(line, "SETTINGS "):
			for set := range strings.SplitSeq(strings.TrimSuffix(strings.TrimPrefix(line, "SETTINGS "), ";"), ", ") {
				t.Settings = append(t.Settings, set)
			}
		}
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("table %s: DDL declares no column", name)
	}
	t.DDL = strings.TrimSuffix(strings.Join(stmt, "\n"), ";")
	return t, nil
}

func parseColumn(def string) (Column, error) {
	name, rest, ok := strings.Cut(def, " ")
	if !ok || !identRE.MatchString(name) {
		return Column{}, fmt.Errorf("column definition %q: no valid name", def)
	}
	typ := rest
	for _, kw := range []string{" CODEC(", " COMMENT ", " DEFAULT ", " MATERIALIZED ", " ALIAS "} {
		if i := strings.Index(typ, kw); i >= 0 {
			typ = typ[:i]
		}
	}
	if typ == "" {
		return Column{}, fmt.Errorf("column definition %q: no type", def)
	}
	return Column{Name: name, Type: typ, Definition: def}, nil
}

// liveTable is a table as the server describes it.
type liveTable struct {
	columns    map[string]string // name → type
	order      []string          // column names in table order
	indexes    map[string]bool
	engineFull string
}

// Retention says how many days each table keeps rows; 0 keeps them
// forever. A table it does not name keeps the schema's TTL.
type Retention map[string]int

var liveTTLRE = regexp.MustCompile(`\bTTL .*?toIntervalDay\((\d+)\)`)

// Plan returns the statements that bring the live tables to the schema,
// each idempotent, in order: CREATE TABLE for a missing table, ADD COLUMN
// and ADD INDEX for what a table lacks, MODIFY TTL when the retention
// differs, MODIFY SETTING for a missing table setting, then CREATE
// MATERIALIZED VIEW for a missing view (a view counts the rows inserted
// after it was created: it does not backfill). A column whose live
// type differs from the schema's is a problem no statement fixes: changing
// a column's type can rewrite the table, so it is left to an operator.
// Columns the schema does not know are kept.
func (s *Schema) Plan(live map[string]*liveTable, keep Retention) (stmts []string, problems []error) {
	for i := range s.Tables {
		t := &s.Tables[i]
		days, ok := keep[t.Name]
		if !ok {
			days = t.TTLDays
		}
		lt := live[t.Name]
		if lt == nil {
			stmts = append(stmts, t.DDL)
			if days != t.TTLDays {
				stmts = append(stmts, t.ttlStatement(days))
			}
			continue
		}
		prev := ""
		for _, c := range t.Columns {
			typ, ok := lt.columns[c.Name]
			switch {
			case !ok:
				pos := " FIRST"
				if prev != "" {
					pos = " AFTER " + prev
				}
				stmts = append(stmts, "ALTER TABLE "+t.Name+" ADD COLUMN IF NOT EXISTS "+c.Definition+pos)
			case normType(typ) != normType(c.Type):
				problems = append(problems, fmt.Errorf("table %s: column %s is %s, the schema says %s: change it by hand (see docs/clickhouse.md)", t.Name, c.Name, typ, c.Type))
			}
			prev = c.Name
		}
		for _, ix := range t.Indexes {
			if !lt.indexes[ix.Name] {
				stmts = append(stmts, "ALTER TABLE "+t.Name+" ADD INDEX IF NOT EXISTS "+ix.Definition)
			}
		}
		if liveDays := liveTTLDays(lt.engineFull); liveDays != days && t.TTLBase != "" {
			stmts = append(stmts, t.ttlStatement(days))
		}
		for _, set := range t.Settings {
			name, _, _ := strings.Cut(set, " = ")
			if name != "index_granularity" && !strings.Contains(lt.engineFull, name+" = ") {
				stmts = append(stmts, "ALTER TABLE "+t.Name+" MODIFY SETTING "+set)
			}
		}
	}
	for _, v := range s.Views {
		if live[v.Name] == nil {
			stmts = append(stmts, v.DDL)
		}
	}
	return stmts, problems
}

func (t *Table) ttlStatement(days int) string {
	if days <= 0 {
		return "ALTER TABLE " + t.Name + " REMOVE TTL"
	}
	return "ALTER TABLE " + t.Name + " MODIFY TTL " + t.TTLBase + " + INTERVAL " + strconv.Itoa(days) + " DAY"
}

// liveTTLDays reads the days of a table TTL from system.tables.engine_full
// ("TTL toDateTime(timestamp) + toIntervalDay(90)"); 0 when there is none.
func liveTTLDays(engineFull string) int {
	m := liveTTLRE.FindStringSubmatch(engineFull)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func normType(t string) string { return strings.ReplaceAll(t, " ", "") }

// validateDatabase checks a database name: identifiers are never built from
// event data, and the configured one must be a plain identifier, so that it
// can be written into statements without quoting.
func validateDatabase(db string) error {
	switch {
	case db == "":
		return errors.New("must not be empty")
	case len(db) > 64:
		return fmt.Errorf("%q is longer than 64 characters", db)
	case !identRE.MatchString(db):
		return fmt.Errorf("%q must match %s", db, identRE)
	case strings.EqualFold(db, "system"), strings.EqualFold(db, "information_schema"):
		return fmt.Errorf("%q is a ClickHouse system database", db)
	}
	return nil
}
