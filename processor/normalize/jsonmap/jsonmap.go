package jsonmap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Source is the name this mapper is registered under.
const Source = "json"

var reasonNotJSON = normalize.NotSource(Source)

// ReasonNoMapping rejects a record no configured mapping takes (none is
// configured, or none names its collector and there is no default).
const ReasonNoMapping normalize.Reason = "no_json_mapping"

// Mapper maps JSON objects by the user's declared mappings. It is built
// once from the configuration and read-only afterwards: safe for concurrent
// use.
type Mapper struct {
	lim         normalize.Limits
	byCollector map[string]*plan
	fallback    *plan
}

var _ normalize.Mapper = (*Mapper)(nil)

// New compiles cfg.JSON. The configuration was validated when it loaded;
// New checks again, so a Mapper never holds a half-compiled mapping.
func New(cfg normalize.Config) (*Mapper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("json mappings: %w", err)
	}
	m := &Mapper{lim: cfg.Limits(), byCollector: map[string]*plan{}}
	for i := range cfg.JSON.Mappings {
		mc := &cfg.JSON.Mappings[i]
		p, err := compile(mc)
		if err != nil {
			return nil, fmt.Errorf("json mappings[%d] (%s): %w", i, mc.Source, err)
		}
		if len(mc.Collectors) == 0 {
			m.fallback = p
		}
		for _, c := range mc.Collectors {
			m.byCollector[c] = p
		}
	}
	return m, nil
}

// NewFactory registers the mapper under [Source].
func NewFactory() normalize.Factory {
	return normalize.Factory{
		Source: Source,
		New:    func(cfg normalize.Config) (normalize.Mapper, error) { return New(cfg) },
	}
}

// A plan is one compiled mapping. Plain dotted paths ("user.name",
// "request.headers.0") form a tree walked once per record with ForEach at
// each level — one pass over the bytes whatever the number of fields —
// and the rest (wildcards, queries, modifiers) are evaluated with gjson.Get.
type plan struct {
	source   string
	idPrefix string // "json-<source>"
	root     node
	others   []pathLeaves
	sets     []func(ev *schemas.Event)
}

// A node is one path element; leaves say what to do with its value.
type node struct {
	key      string
	index    bool // all digits: also an array index
	leaves   []leaf
	children []node
}

type pathLeaves struct {
	path   string
	leaves []leaf
}

type role uint8

const (
	roleField role = iota
	roleID
	roleTime
)

type leaf struct {
	role   role
	t      target
	layout string // dates
}

func compile(mc *normalize.JSONMapping) (*plan, error) {
	p := &plan{source: mc.Source, idPrefix: Source + "-" + mc.Source}
	if mc.IDField != "" {
		p.add(mc.IDField, leaf{role: roleID})
	}
	if mc.Timestamp.Field != "" {
		p.add(mc.Timestamp.Field, leaf{role: roleTime, layout: mc.Timestamp.Layout})
	}
	for _, f := range mc.Fields {
		t, ok := lookupTarget(f.To)
		if !ok {
			return nil, fmt.Errorf("field %s: not writable by a mapping", f.To)
		}
		p.add(f.From, leaf{role: roleField, t: t, layout: f.Layout})
	}
	for _, s := range mc.Set {
		set, err := fixed(s)
		if err != nil {
			return nil, err
		}
		p.sets = append(p.sets, set)
	}
	return p, nil
}

// add puts a path's leaf in the tree, or among the gjson-evaluated paths.
func (p *plan) add(path string, l leaf) {
	if !plainPath(path) {
		for i := range p.others {
			if p.others[i].path == path {
				p.others[i].leaves = append(p.others[i].leaves, l)
				return
			}
		}
		p.others = append(p.others, pathLeaves{path: path, leaves: []leaf{l}})
		return
	}
	n := &p.root
	for part := range strings.SplitSeq(path, ".") {
		i := 0
		for i < len(n.children) && n.children[i].key != part {
			i++
		}
		if i == len(n.children) {
			n.children = append(n.children, node{key: part, index: allDigits(part)})
		}
		n = &n.children[i]
	}
	n.leaves = append(n.leaves, l)
}

// plainPath: dotted names of letters, digits and "_-$/:+ " only — no gjson
// syntax (wildcards, escapes, queries, modifiers, multipaths).
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '$' || c == '/' || c == ':' || c == '+' || c == ' ') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// state is what a record's walk found besides fields.
type state struct {
	id, ts gjson.Result
	layout string
}

// Map maps one JSON object by the mapping of its collector.
func (m *Mapper) Map(rec *normalize.Record, ev *schemas.Event) error {
	p := m.byCollector[rec.Collector]
	if p == nil {
		p = m.fallback
	}
	if p == nil {
		if len(m.byCollector) == 0 {
			return normalize.Reject(ReasonNoMapping, "no json mapping is configured (processor.normalize.json.mappings)")
		}
		return normalize.Reject(ReasonNoMapping, "no json mapping takes collector %.64q and none is the default", rec.Collector)
	}
	root := gjson.Parse(rec.Text())
	if !root.IsObject() {
		return normalize.Reject(reasonNotJSON, "a json record is a JSON object, got %s", normalize.TypeName(root))
	}
	for _, set := range p.sets {
		set(ev)
	}
	var st state
	m.walk(&p.root, root, ev, &st)
	for i := range p.others {
		o := &p.others[i]
		if v := root.Get(o.path); v.Exists() {
			for j := range o.leaves {
				m.apply(&o.leaves[j], v, ev, &st)
			}
		}
	}

	if st.id.Exists() {
		if id := scalar(st.id); id != "" {
			ev.Event.ID = msgid.Derived(p.idPrefix, id)
		}
	}
	if st.ts.Exists() {
		ev.Timestamp = readTime(st.ts, st.layout)
	}
	if ev.Event.Provider == "" {
		ev.Event.Provider = p.source
	}
	o := &ev.OCSF
	if o.CategoryUID == 0 {
		o.CategoryUID = o.ClassUID / 1000
	}
	if o.ActivityID == 0 {
		o.ActivityID = 99 // Other: the mapping did not say
	}
	if o.SeverityID == 0 {
		o.SeverityID = 1 // Informational
	}
	return nil
}

// walk visits the members of v that n names, once each (the first of
// duplicate keys, as gjson.Get would).
func (m *Mapper) walk(n *node, v gjson.Result, ev *schemas.Event, st *state) {
	if len(n.children) == 0 {
		return
	}
	if v.IsArray() {
		for i := range n.children {
			c := &n.children[i]
			if c.index {
				if x := v.Get(c.key); x.Exists() {
					m.visit(c, x, ev, st)
				}
			}
		}
		return
	}
	if !v.IsObject() {
		return
	}
	// A bit per child (the first 64): the walk stops once each was seen.
	var seen uint64
	all := ^uint64(0)
	if len(n.children) < 64 {
		all = uint64(1)<<len(n.children) - 1
	}
	v.ForEach(func(k, x gjson.Result) bool {
		for i := range n.children {
			c := &n.children[i]
			if c.key != k.Str {
				continue
			}
			if i < 64 {
				bit := uint64(1) << i
				if seen&bit != 0 {
					return true
				}
				seen |= bit
			}
			m.visit(c, x, ev, st)
			break
		}
		return len(n.children) > 64 || seen != all
	})
}

func (m *Mapper) visit(c *node, x gjson.Result, ev *schemas.Event, st *state) {
	for j := range c.leaves {
		m.apply(&c.leaves[j], x, ev, st)
	}
	m.walk(c, x, ev, st)
}

// apply writes one value, converted to the target field's type. A value
// that does not convert (text where a number belongs, an object for a
// keyword list element) is skipped: the record's other fields still map,
// and the whole record is in event.original.
func (m *Mapper) apply(l *leaf, v gjson.Result, ev *schemas.Event, st *state) {
	switch l.role {
	case roleID:
		st.id = v
		return
	case roleTime:
		st.ts, st.layout = v, l.layout
		return
	}
	if v.Type == gjson.Null {
		return
	}
	trunc := &ev.Crowsnest.Truncated
	t := &l.t
	switch t.kind {
	case schemas.FieldString:
		if v.Type == gjson.JSON && t.typ != "text" {
			return // a keyword is one value: an object or list is a mapping mistake
		}
		*t.str(ev) = text(v)
	case schemas.FieldStrings:
		dst := t.strs(ev)
		if v.IsArray() {
			v.ForEach(func(_, x gjson.Result) bool {
				if x.Type != gjson.Null {
					*dst = m.lim.Append(*dst, text(x), trunc)
				}
				return true
			})
			return
		}
		*dst = m.lim.Append(*dst, text(v), trunc)
	case schemas.FieldInt:
		if n, ok := integer(v); ok {
			t.setInt(ev, n)
		}
	case schemas.FieldBool:
		switch v.Type {
		case gjson.True, gjson.False:
			t.setBool(ev, v.Type == gjson.True)
		case gjson.String:
			if b, err := strconv.ParseBool(v.Str); err == nil {
				t.setBool(ev, b)
			}
		}
	case schemas.FieldTime:
		*t.time(ev) = readTime(v, l.layout)
	case schemas.FieldMap:
		if !v.IsObject() {
			return
		}
		dst := t.strMap(ev)
		v.ForEach(func(k, x gjson.Result) bool {
			if x.Type != gjson.Null {
				*dst = m.lim.Put(*dst, k.Str, text(x), trunc)
			}
			return true
		})
	case schemas.FieldJSON:
		dst := t.raw(ev)
		*dst = m.lim.KeepJSON(*dst, v.Raw, trunc)
	}
}

// text is a value as a string: a string's content, any other value's JSON
// text (numbers keep their digits; a text field an object's JSON).
func text(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.Str
	}
	return v.Raw
}

// scalar is a string or number as text; anything else has no text.
func scalar(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return v.Str
	case gjson.Number:
		return v.Raw
	}
	return ""
}

// integer reads a whole number: a JSON integer, or a string holding one.
// Fractions and out-of-range values do not convert.
func integer(v gjson.Result) (int64, bool) {
	s := v.Raw
	switch v.Type {
	case gjson.Number:
	case gjson.String:
		s = strings.TrimSpace(v.Str)
	default:
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// readTime reads a time by layout; what does not parse is the zero time
// (the Normalizer then uses when the collector read the record).
func readTime(v gjson.Result, layout string) time.Time {
	switch layout {
	case "", normalize.LayoutRFC3339:
		if v.Type == gjson.String {
			return normalize.ParseTime(v.Str)
		}
	case normalize.LayoutUnix, normalize.LayoutUnixMS, normalize.LayoutUnixUS, normalize.LayoutUnixNS:
		return unixTime(v, layout)
	default:
		if v.Type == gjson.String {
			if t, err := time.Parse(layout, v.Str); err == nil {
				return t.UTC()
			}
		}
	}
	return time.Time{}
}

// unixTime reads a count since the epoch in the layout's unit: an integer
// exactly, a fraction (seconds with milliseconds, say) to the nanosecond
// float64 carries; numbers and numeric strings alike.
func unixTime(v gjson.Result, layout string) time.Time {
	s := v.Raw
	if v.Type == gjson.String {
		s = strings.TrimSpace(v.Str)
	} else if v.Type != gjson.Number {
		return time.Time{}
	}
	unit := int64(1)
	switch layout {
	case normalize.LayoutUnix:
		unit = 1e9
	case normalize.LayoutUnixMS:
		unit = 1e6
	case normalize.LayoutUnixUS:
		unit = 1e3
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if n, err := strconv.ParseInt(whole, 10, 64); err == nil && (!hasFrac || allDigits(frac)) {
		// Decimal digits read exactly: 1773133205.25 s is …205.250000000.
		if n > (1<<63-1)/unit || n < -(1<<63-1)/unit {
			return time.Time{}
		}
		ns := n * unit
		for d := unit / 10; d > 0 && frac != ""; d /= 10 {
			f := int64(frac[0] - '0')
			if n < 0 || whole == "-0" {
				f = -f
			}
			ns += f * d
			frac = frac[1:]
		}
		return time.Unix(0, ns).UTC()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f*float64(unit) > 9e18 || f*float64(unit) < -9e18 {
		return time.Time{}
	}
	return time.Unix(0, int64(f*float64(unit))).UTC()
}

// fixed compiles a `set` entry into what it writes on every event.
func fixed(s normalize.JSONSet) (func(ev *schemas.Event), error) {
	t, ok := lookupTarget(s.To)
	if !ok {
		return nil, fmt.Errorf("set %s: not writable by a mapping", s.To)
	}
	switch t.kind {
	case schemas.FieldString:
		v := s.Value
		return func(ev *schemas.Event) { *t.str(ev) = v }, nil
	case schemas.FieldStrings:
		v := s.Value
		return func(ev *schemas.Event) { p := t.strs(ev); *p = append(*p, v) }, nil
	case schemas.FieldInt:
		n, err := strconv.ParseInt(s.Value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", s.To, err)
		}
		var probe schemas.Event
		if !t.setInt(&probe, n) {
			return nil, fmt.Errorf("set %s: %d is out of range", s.To, n)
		}
		return func(ev *schemas.Event) { t.setInt(ev, n) }, nil
	case schemas.FieldBool:
		b, err := strconv.ParseBool(s.Value)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", s.To, err)
		}
		return func(ev *schemas.Event) { t.setBool(ev, b) }, nil
	case schemas.FieldTime:
		ts, err := time.Parse(time.RFC3339Nano, s.Value)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", s.To, err)
		}
		return func(ev *schemas.Event) { *t.time(ev) = ts }, nil
	}
	return nil, errors.New("set " + s.To + ": a " + t.typ + " field has no fixed value")
}
