package hunts

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
)

//go:embed *.sql
var files embed.FS

// Hunt is one analyst query.
type Hunt struct {
	// Name is the file name without .sql: exec_into_pod_timeline.
	Name        string
	Title       string
	Description string
	// SchemaVersion is the field registry version the query was written
	// for (its "-- schema:" line).
	SchemaVersion string
	// SQL is the whole file. Its tables are unqualified: run it in the
	// database that holds them.
	SQL string
	// Params are the query parameters the SQL uses, in order of first use.
	Params []Param
	// Columns are what each row holds, in order, from the "-- column"
	// lines: the contract every backend that runs the hunt keeps (the
	// analyst CLI runs each hunt on Elasticsearch too).
	Columns []Column
}

// Column is one output column of a hunt.
type Column struct {
	Name string
	// Type is one of the ColumnTypes: what a value is, whichever store
	// answered.
	Type string
	Doc  string
}

// ColumnTypes are the types a column may declare: a point in time (UTC),
// text, a whole number, a list of text.
var ColumnTypes = []string{"time", "string", "int", "strings"}

// Param is one query parameter of a hunt.
type Param struct {
	Name string
	// Type is the ClickHouse type in the placeholder: DateTime64(3, 'UTC').
	Type string
	// Doc says what it is, from the hunt's "-- param name: doc" line.
	Doc string
}

var (
	placeholderRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*):([^{}]+)\}`)
	paramDocRE    = regexp.MustCompile(`^-- param ([A-Za-z_][A-Za-z0-9_]*): (.+)$`)
	columnRE      = regexp.MustCompile(`^-- column ([A-Za-z_][A-Za-z0-9_]*) \(([a-z]+)\): (.+)$`)
)

// All returns every hunt, sorted by name.
func All() ([]Hunt, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("hunts: %w", err)
	}
	slices.Sort(names)
	out := make([]Hunt, 0, len(names))
	var errs []error
	for _, n := range names {
		data, err := files.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("hunts: %w", err)
		}
		h, err := Parse(strings.TrimSuffix(n, ".sql"), string(data))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, h)
	}
	return out, errors.Join(errs...)
}

// Get returns the hunt called name.
func Get(name string) (Hunt, error) {
	all, err := All()
	if err != nil {
		return Hunt{}, err
	}
	for _, h := range all {
		if h.Name == name {
			return h, nil
		}
	}
	names := make([]string, len(all))
	for i, h := range all {
		names[i] = h.Name
	}
	return Hunt{}, fmt.Errorf("no hunt %q (have %s)", name, strings.Join(names, ", "))
}

// Parse reads a hunt file: header comment lines "-- title: …",
// "-- description: …", "-- schema: …" and one "-- param name: doc" per
// parameter, one "-- column name (type): doc" per output column, then the
// SQL. Every {name:Type} placeholder must have its param line and keep one
// type, and every param line a placeholder; a hunt declares at least one
// column, each once, of one of the ColumnTypes.
func Parse(name, sql string) (Hunt, error) {
	h := Hunt{Name: name, SQL: sql}
	docs := map[string]string{}
	var errs []error
	for line := range strings.SplitSeq(sql, "\n") {
		if !strings.HasPrefix(line, "-- ") {
			break
		}
		switch {
		case strings.HasPrefix(line, "-- title: "):
			h.Title = strings.TrimPrefix(line, "-- title: ")
		case strings.HasPrefix(line, "-- description: "):
			h.Description = strings.TrimPrefix(line, "-- description: ")
		case strings.HasPrefix(line, "-- schema: "):
			h.SchemaVersion = strings.TrimPrefix(line, "-- schema: ")
		case strings.HasPrefix(line, "-- column "):
			m := columnRE.FindStringSubmatch(line)
			switch {
			case m == nil:
				errs = append(errs, fmt.Errorf("%q: want -- column name (type): doc", line))
			case !slices.Contains(ColumnTypes, m[2]):
				errs = append(errs, fmt.Errorf("column %s: type %q is not one of %s", m[1], m[2], strings.Join(ColumnTypes, ", ")))
			case slices.ContainsFunc(h.Columns, func(c Column) bool { return c.Name == m[1] }):
				errs = append(errs, fmt.Errorf("column %s: declared twice", m[1]))
			default:
				h.Columns = append(h.Columns, Column{Name: m[1], Type: m[2], Doc: m[3]})
			}
		default:
			if m := paramDocRE.FindStringSubmatch(line); m != nil {
				docs[m[1]] = m[2]
			}
		}
	}
	if h.Title == "" || h.Description == "" || h.SchemaVersion == "" {
		errs = append(errs, errors.New("needs -- title:, -- description: and -- schema: lines"))
	}
	if len(h.Columns) == 0 {
		errs = append(errs, errors.New("needs a -- column line per output column"))
	}
	seen := map[string]string{}
	for _, m := range placeholderRE.FindAllStringSubmatch(sql, -1) {
		pname, typ := m[1], m[2]
		if prev, ok := seen[pname]; ok {
			if prev != typ {
				errs = append(errs, fmt.Errorf("parameter %s is %s and %s", pname, prev, typ))
			}
			continue
		}
		seen[pname] = typ
		doc, ok := docs[pname]
		if !ok {
			errs = append(errs, fmt.Errorf("parameter %s has no -- param line", pname))
		}
		h.Params = append(h.Params, Param{Name: pname, Type: typ, Doc: doc})
	}
	for pname := range docs {
		if _, ok := seen[pname]; !ok {
			errs = append(errs, fmt.Errorf("-- param %s: the query does not use it", pname))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Hunt{}, fmt.Errorf("hunt %s: %w", name, err)
	}
	return h, nil
}

// Args checks values against the hunt's parameters — every one given,
// nothing else — and returns them for the server, which substitutes them
// as typed values (clickhouse.WithParameters, or param_<name> over HTTP):
// a value is never pasted into the SQL.
func (h Hunt) Args(values map[string]string) (map[string]string, error) {
	var errs []error
	out := make(map[string]string, len(h.Params))
	for _, p := range h.Params {
		v, ok := values[p.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: missing (%s: %s)", p.Name, p.Type, p.Doc))
			continue
		}
		out[p.Name] = v
	}
	for k := range values {
		if !slices.ContainsFunc(h.Params, func(p Param) bool { return p.Name == k }) {
			errs = append(errs, fmt.Errorf("%s: hunt %s has no such parameter", k, h.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("hunt %s: %w", h.Name, err)
	}
	return out, nil
}
