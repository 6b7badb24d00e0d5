package clickhouse

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/tidwall/gjson"
)

// convKind is how one registry field's JSON value becomes a column value.
type convKind uint8

const (
	convString    convKind = iota + 1 // keyword, text → String
	convStrings                       // keyword[], text[] → Array(String)
	convIP                            // ip → IPv6
	convIPs                           // ip[] → Array(IPv6)
	convInt32                         // integer → Int32
	convInt64                         // long → Int64
	convNullInt32                     // nullable integer → Nullable(Int32)
	convNullInt64                     // nullable long → Nullable(Int64)
	convBool                          // boolean → Bool
	convNullBool                      // nullable boolean → Nullable(Bool)
	convTime                          // date → DateTime64(3, 'UTC')
	convMap                           // flattened → Map(LowCardinality(String), String)
	convJSON                          // json → String holding the raw JSON value
)

// kindOf maps a registry field onto its conversion.
func kindOf(f schemas.FieldInfo) (convKind, error) {
	switch f.Type {
	case "keyword", "text":
		if f.Array {
			return convStrings, nil
		}
		return convString, nil
	case "ip":
		if f.Array {
			return convIPs, nil
		}
		return convIP, nil
	case "integer":
		if f.Nullable {
			return convNullInt32, nil
		}
		return convInt32, nil
	case "long":
		if f.Nullable {
			return convNullInt64, nil
		}
		return convInt64, nil
	case "boolean":
		if f.Nullable {
			return convNullBool, nil
		}
		return convBool, nil
	case "date":
		return convTime, nil
	case "flattened":
		return convMap, nil
	case "json":
		return convJSON, nil
	}
	return 0, fmt.Errorf("field %s: registry type %q has no ClickHouse conversion", f.Name, f.Type)
}

// colSpec is one column of an insert, from the registry.
type colSpec struct {
	Name     string // ClickHouse column
	Field    string // ECS dotted name
	Type     string // ClickHouse type
	kind     convKind
	required bool
}

// node is one level of the document: a field (col >= 0) or a group of them.
type node struct {
	children map[string]*node
	col      int
	path     string // the dotted name, for errors
}

// tableMap is how documents of one table become rows: its columns in
// registry order, and the tree of ECS paths that finds a value's column in
// one walk over the document.
type tableMap struct {
	table   string
	columns []colSpec
	root    *node
	idCol   int // event_id
	tsCol   int // timestamp
}

// newTableMap maps every registry field a table holds: all fields for
// alerts, the fields that are not alert-only for events.
func newTableMap(table string, fields []schemas.FieldInfo) (*tableMap, error) {
	m := &tableMap{table: table, root: &node{col: -1}, idCol: -1, tsCol: -1}
	for _, f := range fields {
		if table == "events" && f.AlertOnly {
			continue
		}
		k, err := kindOf(f)
		if err != nil {
			return nil, err
		}
		col := len(m.columns)
		m.columns = append(m.columns, colSpec{Name: f.Column, Field: f.Name, Type: f.ClickHouseType, kind: k, required: f.Required})
		switch f.Name {
		case "event.id":
			m.idCol = col
		case "@timestamp":
			m.tsCol = col
		}
		n := m.root
		path := splitPath(f.Name)
		for i, seg := range path {
			if n.col >= 0 {
				return nil, fmt.Errorf("field %s: %s is a field, not a group", f.Name, seg)
			}
			if n.children == nil {
				n.children = map[string]*node{}
			}
			child, ok := n.children[seg]
			if !ok {
				child = &node{col: -1, path: joinPath(n.path, seg)}
				n.children[seg] = child
			}
			if i == len(path)-1 {
				if child.col >= 0 || child.children != nil {
					return nil, fmt.Errorf("field %s: mapped twice", f.Name)
				}
				child.col = col
			}
			n = child
		}
	}
	if m.idCol < 0 || m.tsCol < 0 {
		return nil, fmt.Errorf("table %s: the registry has no event.id or @timestamp", table)
	}
	return m, nil
}

func joinPath(parent, seg string) string {
	if parent == "" {
		return seg
	}
	return parent + "." + seg
}

func splitPath(name string) []string {
	var out []string
	start := 0
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			out = append(out, name[start:i])
			start = i + 1
		}
	}
	return append(out, name[start:])
}

// colBuf holds one column's values for the rows of a batch; only the slice
// of its kind is used. Arrays and nullable values point into arenas, so a
// batch allocates a few growing slices rather than one per value.
type colBuf struct {
	kind convKind

	strs   []string
	strss  [][]string
	ips    []netip.Addr
	ipss   [][]netip.Addr
	i32    []int32
	i64    []int64
	ni32   []*int32
	ni64   []*int64
	bools  []bool
	nbools []*bool
	times  []time.Time
	maps   []map[string]string

	strArena []string
	ipArena  []netip.Addr
	i32Arena []int32
	i64Arena []int64
	bArena   []bool
}

// epoch is what an absent date holds: DateTime64's zero, not Go's.
var epoch = time.Unix(0, 0).UTC()

// DateTime64's range; a time outside it would be stored wrapped.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2299, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
)

// unspecified is what an absent ip holds ("::"), as the DDL documents.
var unspecified = netip.IPv6Unspecified()

func (c *colBuf) appendDefault() {
	switch c.kind {
	case convString, convJSON:
		c.strs = append(c.strs, "")
	case convStrings:
		c.strss = append(c.strss, nil)
	case convIP:
		c.ips = append(c.ips, unspecified)
	case convIPs:
		c.ipss = append(c.ipss, nil)
	case convInt32:
		c.i32 = append(c.i32, 0)
	case convInt64:
		c.i64 = append(c.i64, 0)
	case convNullInt32:
		c.ni32 = append(c.ni32, nil)
	case convNullInt64:
		c.ni64 = append(c.ni64, nil)
	case convBool:
		c.bools = append(c.bools, false)
	case convNullBool:
		c.nbools = append(c.nbools, nil)
	case convTime:
		c.times = append(c.times, epoch)
	case convMap:
		c.maps = append(c.maps, nil)
	}
}

// errAbsent says a JSON null: the value is treated as absent.
var errAbsent = errors.New("absent")

// appendValue converts v and appends it. On error nothing is appended.
func (c *colBuf) appendValue(v gjson.Result) error {
	if v.Type == gjson.Null {
		return errAbsent
	}
	switch c.kind {
	case convString:
		if v.Type != gjson.String {
			return fmt.Errorf("want a string, got %s", typeName(v))
		}
		c.strs = append(c.strs, v.Str)
	case convJSON:
		c.strs = append(c.strs, v.Raw)
	case convStrings:
		start := len(c.strArena)
		if err := eachString(v, func(s string) { c.strArena = append(c.strArena, s) }); err != nil {
			c.strArena = c.strArena[:start]
			return err
		}
		c.strss = append(c.strss, c.strArena[start:len(c.strArena):len(c.strArena)])
	case convIP:
		ip, absent, err := parseIP(v)
		if err != nil {
			return err
		}
		if absent {
			return errAbsent
		}
		c.ips = append(c.ips, ip)
	case convIPs:
		start := len(c.ipArena)
		var ipErr error
		err := eachString(v, func(s string) {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				if ipErr == nil {
					ipErr = fmt.Errorf("%q is not an IP address", s)
				}
				return
			}
			c.ipArena = append(c.ipArena, ip)
		})
		if err == nil {
			err = ipErr
		}
		if err != nil {
			c.ipArena = c.ipArena[:start]
			return err
		}
		c.ipss = append(c.ipss, c.ipArena[start:len(c.ipArena):len(c.ipArena)])
	case convInt32, convNullInt32:
		n, err := parseInt(v, math.MinInt32, math.MaxInt32)
		if err != nil {
			return err
		}
		if c.kind == convInt32 {
			c.i32 = append(c.i32, int32(n))
			break
		}
		c.i32Arena = append(c.i32Arena, int32(n))
		c.ni32 = append(c.ni32, &c.i32Arena[len(c.i32Arena)-1])
	case convInt64, convNullInt64:
		n, err := parseInt(v, math.MinInt64, math.MaxInt64)
		if err != nil {
			return err
		}
		if c.kind == convInt64 {
			c.i64 = append(c.i64, n)
			break
		}
		c.i64Arena = append(c.i64Arena, n)
		c.ni64 = append(c.ni64, &c.i64Arena[len(c.i64Arena)-1])
	case convBool, convNullBool:
		if v.Type != gjson.True && v.Type != gjson.False {
			return fmt.Errorf("want true or false, got %s", typeName(v))
		}
		if c.kind == convBool {
			c.bools = append(c.bools, v.Type == gjson.True)
			break
		}
		c.bArena = append(c.bArena, v.Type == gjson.True)
		c.nbools = append(c.nbools, &c.bArena[len(c.bArena)-1])
	case convTime:
		if v.Type != gjson.String {
			return fmt.Errorf("want a time string, got %s", typeName(v))
		}
		t, err := parseTime(v.Str)
		if err != nil {
			return err
		}
		c.times = append(c.times, t)
	case convMap:
		if !v.IsObject() {
			return fmt.Errorf("want an object, got %s", typeName(v))
		}
		m := map[string]string{}
		v.ForEach(func(k, val gjson.Result) bool {
			// A flattened value is bounded free-form data: a leaf that is not
			// a string keeps its JSON text rather than failing the event.
			if val.Type == gjson.String {
				m[k.Str] = val.Str
			} else {
				m[k.Str] = val.Raw
			}
			return true
		})
		c.maps = append(c.maps, m)
	}
	return nil
}

// appendFrom appends every row of o, a column of the same kind.
func (c *colBuf) appendFrom(o *colBuf) {
	switch c.kind {
	case convString, convJSON:
		c.strs = append(c.strs, o.strs...)
	case convStrings:
		c.strss = append(c.strss, o.strss...)
	case convIP:
		c.ips = append(c.ips, o.ips...)
	case convIPs:
		c.ipss = append(c.ipss, o.ipss...)
	case convInt32:
		c.i32 = append(c.i32, o.i32...)
	case convInt64:
		c.i64 = append(c.i64, o.i64...)
	case convNullInt32:
		c.ni32 = append(c.ni32, o.ni32...)
	case convNullInt64:
		c.ni64 = append(c.ni64, o.ni64...)
	case convBool:
		c.bools = append(c.bools, o.bools...)
	case convNullBool:
		c.nbools = append(c.nbools, o.nbools...)
	case convTime:
		c.times = append(c.times, o.times...)
	case convMap:
		c.maps = append(c.maps, o.maps...)
	}
}

// truncate drops every row from n on.
func (c *colBuf) truncate(n int) {
	switch c.kind {
	case convString, convJSON:
		clear(c.strs[n:])
		c.strs = c.strs[:n]
	case convStrings:
		clear(c.strss[n:])
		c.strss = c.strss[:n]
	case convIP:
		c.ips = c.ips[:n]
	case convIPs:
		clear(c.ipss[n:])
		c.ipss = c.ipss[:n]
	case convInt32:
		c.i32 = c.i32[:n]
	case convInt64:
		c.i64 = c.i64[:n]
	case convNullInt32:
		c.ni32 = c.ni32[:n]
	case convNullInt64:
		c.ni64 = c.ni64[:n]
	case convBool:
		c.bools = c.bools[:n]
	case convNullBool:
		c.nbools = c.nbools[:n]
	case convTime:
		c.times = c.times[:n]
	case convMap:
		clear(c.maps[n:])
		c.maps = c.maps[:n]
	}
}

// reset empties the column, keeping its memory but no references into the
// previous batch's documents.
func (c *colBuf) reset() {
	c.truncate(0)
	clear(c.strArena)
	c.strArena = c.strArena[:0]
	c.ipArena = c.ipArena[:0]
	c.i32Arena = c.i32Arena[:0]
	c.i64Arena = c.i64Arena[:0]
	c.bArena = c.bArena[:0]
}

// keep compacts the column to the rows whose keep entry is true.
func (c *colBuf) keep(keep []bool) {
	switch c.kind {
	case convString, convJSON:
		c.strs = compact(c.strs, keep)
	case convStrings:
		c.strss = compact(c.strss, keep)
	case convIP:
		c.ips = compact(c.ips, keep)
	case convIPs:
		c.ipss = compact(c.ipss, keep)
	case convInt32:
		c.i32 = compact(c.i32, keep)
	case convInt64:
		c.i64 = compact(c.i64, keep)
	case convNullInt32:
		c.ni32 = compact(c.ni32, keep)
	case convNullInt64:
		c.ni64 = compact(c.ni64, keep)
	case convBool:
		c.bools = compact(c.bools, keep)
	case convNullBool:
		c.nbools = compact(c.nbools, keep)
	case convTime:
		c.times = compact(c.times, keep)
	case convMap:
		c.maps = compact(c.maps, keep)
	}
}

func compact[T any](s []T, keep []bool) []T {
	n := 0
	for i := range s {
		if keep[i] {
			s[n] = s[i]
			n++
		}
	}
	clear(s[n:])
	return s[:n]
}

// slice returns rows [lo, hi) as the typed slice clickhouse-go appends.
func (c *colBuf) slice(lo, hi int) any {
	switch c.kind {
	case convString, convJSON:
		return c.strs[lo:hi]
	case convStrings:
		return c.strss[lo:hi]
	case convIP:
		return c.ips[lo:hi]
	case convIPs:
		return c.ipss[lo:hi]
	case convInt32:
		return c.i32[lo:hi]
	case convInt64:
		return c.i64[lo:hi]
	case convNullInt32:
		return c.ni32[lo:hi]
	case convNullInt64:
		return c.ni64[lo:hi]
	case convBool:
		return c.bools[lo:hi]
	case convNullBool:
		return c.nbools[lo:hi]
	case convTime:
		return c.times[lo:hi]
	case convMap:
		return c.maps[lo:hi]
	}
	return nil
}

// row returns the value of row i, for the row-at-a-time append of array and
// map columns (clickhouse-go appends those without reflection only one row
// at a time).
func (c *colBuf) row(i int) any {
	switch c.kind {
	case convStrings:
		return c.strss[i]
	case convIPs:
		return c.ipss[i]
	case convMap:
		return c.maps[i]
	}
	return nil
}

// rowWise reports whether the column is appended a row at a time.
func (c *colBuf) rowWise() bool {
	return c.kind == convStrings || c.kind == convIPs || c.kind == convMap
}

func (c *colBuf) len() int {
	switch c.kind {
	case convString, convJSON:
		return len(c.strs)
	case convStrings:
		return len(c.strss)
	case convIP:
		return len(c.ips)
	case convIPs:
		return len(c.ipss)
	case convInt32:
		return len(c.i32)
	case convInt64:
		return len(c.i64)
	case convNullInt32:
		return len(c.ni32)
	case convNullInt64:
		return len(c.ni64)
	case convBool:
		return len(c.bools)
	case convNullBool:
		return len(c.nbools)
	case convTime:
		return len(c.times)
	case convMap:
		return len(c.maps)
	}
	return 0
}

// rowBuilder turns documents into rows of one table, column by column. A
// document is converted completely before it counts: one that fails leaves
// no trace, so what reaches clickhouse-go can never poison its batch.
type rowBuilder struct {
	m    *tableMap
	cols []colBuf
	// seen[c] == gen when column c got a value in the current document.
	seen []uint32
	gen  uint32
	rows int
}

func newRowBuilder(m *tableMap) *rowBuilder {
	b := &rowBuilder{m: m, cols: make([]colBuf, len(m.columns)), seen: make([]uint32, len(m.columns))}
	for i, c := range m.columns {
		b.cols[i].kind = c.kind
	}
	return b
}

// Rows is the number of rows held.
func (b *rowBuilder) Rows() int { return b.rows }

// Reset empties the builder for the next batch.
func (b *rowBuilder) Reset() {
	for i := range b.cols {
		b.cols[i].reset()
	}
	b.rows = 0
}

// ID returns the event.id of row i.
func (b *rowBuilder) ID(i int) string { return b.cols[b.m.idCol].strs[i] }

// Time returns the @timestamp of row i.
func (b *rowBuilder) Time(i int) time.Time { return b.cols[b.m.tsCol].times[i] }

// AppendFrom appends the rows of o, a builder of the same table. Values
// that point into o's arenas stay valid until o is Reset.
func (b *rowBuilder) AppendFrom(o *rowBuilder) {
	for i := range b.cols {
		b.cols[i].appendFrom(&o.cols[i])
	}
	b.rows += o.rows
}

// Keep compacts the rows to those whose keep entry is true.
func (b *rowBuilder) Keep(keep []bool) {
	n := 0
	for _, k := range keep[:b.rows] {
		if k {
			n++
		}
	}
	for i := range b.cols {
		b.cols[i].keep(keep[:b.rows])
	}
	b.rows = n
}

// Add converts one document into a row. The document must be one JSON
// object in the ECS nesting the registry describes; a value of the wrong
// type, an unparseable time or address, a duplicate key or a missing
// required field rejects it. Keys the registry does not know are ignored.
func (b *rowBuilder) Add(doc []byte) error {
	if !gjson.ValidBytes(doc) {
		return errors.New("not a JSON document")
	}
	root := gjson.ParseBytes(doc)
	if !root.IsObject() {
		return fmt.Errorf("want a JSON object, got %s", typeName(root))
	}
	b.gen++
	if b.gen == 0 { // wrapped: forget every old mark
		clear(b.seen)
		b.gen = 1
	}
	err := b.walk(root, b.m.root)
	if err == nil {
		for i := range b.cols {
			if b.seen[i] == b.gen {
				continue
			}
			if b.m.columns[i].required {
				err = fmt.Errorf("%s: required, missing", b.m.columns[i].Field)
				break
			}
			b.cols[i].appendDefault()
		}
	}
	if err != nil {
		for i := range b.cols {
			b.cols[i].truncate(b.rows)
		}
		return err
	}
	b.rows++
	return nil
}

func (b *rowBuilder) walk(obj gjson.Result, n *node) error {
	var err error
	obj.ForEach(func(k, v gjson.Result) bool {
		child := n.children[k.Str]
		if child == nil {
			return true // not a registry field: ignored
		}
		if child.col < 0 {
			switch {
			case v.IsObject():
				err = b.walk(v, child)
			case v.Type == gjson.Null:
			default:
				err = fmt.Errorf("%s: want an object, got %s", child.path, typeName(v))
			}
			return err == nil
		}
		c := child.col
		if b.seen[c] == b.gen {
			err = fmt.Errorf("%s: duplicate key", b.m.columns[c].Field)
			return false
		}
		switch cerr := b.cols[c].appendValue(v); {
		case cerr == nil:
			b.seen[c] = b.gen
		case errors.Is(cerr, errAbsent):
			// left for the default
		default:
			err = fmt.Errorf("%s: %w", b.m.columns[c].Field, cerr)
			return false
		}
		return true
	})
	return err
}

func typeName(v gjson.Result) string {
	switch v.Type {
	case gjson.Null:
		return "null"
	case gjson.False, gjson.True:
		return "a boolean"
	case gjson.Number:
		return "a number"
	case gjson.String:
		return "a string"
	}
	if v.IsArray() {
		return "an array"
	}
	return "an object"
}

// eachString calls fn with every string of a JSON array of strings; a lone
// string counts as a one-element array, as ECS allows.
func eachString(v gjson.Result, fn func(string)) error {
	if v.Type == gjson.String {
		fn(v.Str)
		return nil
	}
	if !v.IsArray() {
		return fmt.Errorf("want an array of strings, got %s", typeName(v))
	}
	var err error
	v.ForEach(func(_, e gjson.Result) bool {
		if e.Type != gjson.String {
			err = fmt.Errorf("want an array of strings, found %s in it", typeName(e))
			return false
		}
		fn(e.Str)
		return true
	})
	return err
}

func parseIP(v gjson.Result) (ip netip.Addr, absent bool, err error) {
	if v.Type != gjson.String {
		return netip.Addr{}, false, fmt.Errorf("want an IP address string, got %s", typeName(v))
	}
	if v.Str == "" {
		return netip.Addr{}, true, nil
	}
	ip, err = netip.ParseAddr(v.Str)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("%q is not an IP address", v.Str)
	}
	return ip, false, nil
}

// parseInt reads an integral JSON number within [lo, hi]. A number written
// with a fraction or exponent counts when its value is integral.
func parseInt(v gjson.Result, lo, hi int64) (int64, error) {
	if v.Type != gjson.Number {
		return 0, fmt.Errorf("want an integer, got %s", typeName(v))
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil {
		f := v.Num
		if f != math.Trunc(f) || f < -9.223372036854775e18 || f > 9.223372036854775e18 {
			return 0, fmt.Errorf("%s is not an integer in range", v.Raw)
		}
		n = int64(f)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

// parseTime reads a time as the schema writes it (schemas.TimeLayout, UTC
// milliseconds) or any RFC 3339 time, and checks DateTime64's range.
func parseTime(s string) (time.Time, error) {
	t, ok := parseLayoutFast(s)
	if !ok {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
		}
		t = t.UTC()
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("%s is outside DateTime64's range (1900 to 2299)", s)
	}
	return t, nil
}

// parseLayoutFast parses exactly "2006-01-02T15:04:05.000Z", the layout of
// every time crowsnest writes, without time.Parse's generality.
func parseLayoutFast(s string) (time.Time, bool) {
	if len(s) != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' || s[23] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for j := i; j < i+n; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	ms, ok7 := num(20, 3)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, ms*1_000_000, time.UTC)
	if t.Day() != day { // 31 February and the like: let time.Parse reject it
		return time.Time{}, false
	}
	return t, true
}
