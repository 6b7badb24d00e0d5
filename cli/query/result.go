package query

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/hunts"
)

// Result is what a hunt returned: rows of the hunt's columns, each value
// of its column's type — time.Time (UTC) for time, string, int64 for int,
// []string for strings — whichever backend answered.
type Result struct {
	Columns []hunts.Column
	Rows    [][]any
	// More says rows beyond the limit matched and were left out.
	More bool
}

// check verifies that every row has a value of the right type per column:
// a backend returning anything else is a bug to report, not to print.
func (r *Result) check(backend, hunt string) error {
	for i, row := range r.Rows {
		if len(row) != len(r.Columns) {
			return fmt.Errorf("%s: hunt %s: row %d has %d values for %d columns", backend, hunt, i+1, len(row), len(r.Columns))
		}
		for j, c := range r.Columns {
			ok := false
			switch row[j].(type) {
			case time.Time:
				ok = c.Type == "time"
			case string:
				ok = c.Type == "string"
			case int64:
				ok = c.Type == "int"
			case []string:
				ok = c.Type == "strings"
			}
			if !ok {
				return fmt.Errorf("%s: hunt %s: column %s is %s, got %T", backend, hunt, c.Name, c.Type, row[j])
			}
		}
	}
	return nil
}

// limit keeps the first n rows, noting whether there were more.
func (r *Result) limit(n int) {
	if len(r.Rows) > n {
		r.Rows, r.More = r.Rows[:n], true
	}
}

// TimeLayout is how times are printed: RFC 3339 in UTC, to the millisecond.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// WriteTable prints the result as columns aligned with spaces, a header
// line first. Control characters in values are escaped, so a hostile value
// can neither break the alignment nor drive the analyst's terminal.
func WriteTable(w io.Writer, r Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	names := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		names[i] = strings.ToUpper(c.Name)
	}
	fmt.Fprintln(tw, strings.Join(names, "\t"))
	cells := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i, v := range row {
			cells[i] = cell(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func cell(v any) string {
	switch x := v.(type) {
	case time.Time:
		return formatTime(x)
	case string:
		return printable(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case []string:
		parts := make([]string, len(x))
		for i, s := range x {
			parts[i] = printable(s)
		}
		return strings.Join(parts, ",")
	}
	return printable(fmt.Sprint(v))
}

// printable escapes control and invalid characters as Go would quote them.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}

// WriteJSONLines prints one JSON object per row, the columns in order;
// times are RFC 3339 strings, numbers numbers, lists arrays (never null).
func WriteJSONLines(w io.Writer, r Result) error {
	var b []byte
	for _, row := range r.Rows {
		b = append(b[:0], '{')
		for i, c := range r.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, c.Name)
			b = append(b, ':')
			v := row[i]
			switch x := v.(type) {
			case time.Time:
				v = formatTime(x)
			case []string:
				if x == nil {
					v = []string{}
				}
			}
			enc, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("column %s: %w", c.Name, err)
			}
			b = append(b, enc...)
		}
		b = append(b, '}', '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
