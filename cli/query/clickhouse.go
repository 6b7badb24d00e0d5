package query

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouse runs hunts as their SQL, on a connection to the database the
// sink writes (clickhouse.Open of the sink's config).
type ClickHouse struct {
	conn driver.Conn
	// where names the server in errors.
	where string
}

// NewClickHouse returns a backend querying conn; where names the server in
// errors (its URL).
func NewClickHouse(conn driver.Conn, where string) *ClickHouse {
	return &ClickHouse{conn: conn, where: where}
}

// chTimeLayout is how a DateTime64(3) query parameter is written.
const chTimeLayout = "2006-01-02 15:04:05.000"

// Run runs the hunt's SQL with its parameters bound by the server
// (param_<name>): no value is pasted into the SQL. A hunt's limit
// parameter is limit+1, so that More can be told.
func (c *ClickHouse) Run(ctx context.Context, h Hunt, a Args, limit int) (Result, error) {
	params := make(map[string]string, len(h.Params))
	for _, p := range h.Params {
		if p.Name == LimitParam {
			params[p.Name] = strconv.Itoa(limit + 1)
			continue
		}
		kind, err := kindOf(p)
		if err != nil {
			return Result{}, err
		}
		switch kind {
		case kindTime:
			params[p.Name] = a.Time(p.Name).UTC().Format(chTimeLayout)
		case kindString:
			params[p.Name] = a.String(p.Name)
		case kindInt:
			params[p.Name] = strconv.FormatInt(a.Int(p.Name), 10)
		}
	}
	rows, err := c.conn.Query(clickhouse.Context(ctx, clickhouse.WithParameters(params)), h.SQL)
	if err != nil {
		return Result{}, fmt.Errorf("clickhouse at %s: hunt %s: %w", c.where, h.Name, err)
	}
	defer rows.Close()
	res := Result{Columns: h.Columns}
	var want []string
	for _, col := range h.Columns {
		want = append(want, col.Name)
	}
	if got := rows.Columns(); !slices.Equal(got, want) {
		return Result{}, fmt.Errorf("clickhouse: hunt %s returned columns %v, its -- column lines say %v", h.Name, got, want)
	}
	types := rows.ColumnTypes()
	for rows.Next() {
		if len(res.Rows) == limit {
			res.More = true
			break
		}
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return Result{}, fmt.Errorf("clickhouse: hunt %s: %w", h.Name, err)
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			v, err := chValue(reflect.ValueOf(p).Elem(), h.Columns[i].Type)
			if err != nil {
				return Result{}, fmt.Errorf("clickhouse: hunt %s column %s: %w", h.Name, h.Columns[i].Name, err)
			}
			row[i] = v
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return Result{}, fmt.Errorf("clickhouse at %s: hunt %s: %w", c.where, h.Name, err)
	}
	return res, res.check("clickhouse", h.Name)
}

// chValue converts a scanned value to its column's type.
func chValue(v reflect.Value, typ string) (any, error) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, fmt.Errorf("NULL where a %s was declared", typ)
		}
		v = v.Elem()
	}
	switch typ {
	case "time":
		if t, ok := v.Interface().(time.Time); ok {
			return t.UTC(), nil
		}
	case "string":
		if v.Kind() == reflect.String {
			return v.String(), nil
		}
	case "int":
		switch {
		case v.CanInt():
			return v.Int(), nil
		case v.CanUint():
			return int64(v.Uint()), nil
		}
	case "strings":
		if s, ok := v.Interface().([]string); ok {
			if s == nil {
				s = []string{}
			}
			return s, nil
		}
	}
	return nil, fmt.Errorf("declared %s, the server returned %s", typ, v.Type())
}
