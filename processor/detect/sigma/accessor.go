package sigma

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// accessor reads the values of one rule field from an event: a registry
// field, one key of a map field, a path into a JSON field, or one element
// of an array field.
type accessor struct {
	name   string // as the rule wrote it, for messages
	g      schemas.FieldGetter
	key    string            // map key (FieldMap)
	path   []string          // JSON path (FieldJSON); nil for the whole value
	index  int               // element of an array (FieldStrings), -1 for all
	values map[string]string // rewrite of the rule's values (mapping)
	multi  []accessor        // keyword search: several fields
	alt    []accessor        // more fields the value may be in (a mapping's or)
}

type valKind uint8

const (
	valString valKind = iota
	valInt
	valBool
)

// fval is one value of a field as a matcher sees it. Strings are the
// event's own; nothing is copied.
type fval struct {
	kind valKind
	s    string // valString; for valInt from JSON, the number as written
	i    int64
	b    bool
}

// isStringy reports whether the field holds text (so string patterns apply).
func (a *accessor) isStringy() bool {
	if a.multi != nil {
		return true
	}
	switch a.g.Kind {
	case schemas.FieldString, schemas.FieldStrings, schemas.FieldMap, schemas.FieldTime:
		return true
	case schemas.FieldJSON:
		return true
	}
	return false
}

// any calls f with each value of the field until f returns true, and
// reports whether it did. An absent field has no values.
func (a *accessor) any(e *schemas.Event, f func(v fval) bool) bool {
	if a.multi != nil {
		for i := range a.multi {
			if a.multi[i].any(e, f) {
				return true
			}
		}
		return false
	}
	if a.one(e, f) {
		return true
	}
	for i := range a.alt {
		if a.alt[i].one(e, f) {
			return true
		}
	}
	return false
}

// one is any on this accessor's own field, without its alternatives.
func (a *accessor) one(e *schemas.Event, f func(v fval) bool) bool {
	var v fval
	switch a.g.Kind {
	case schemas.FieldString:
		s := a.g.String(e)
		if s == "" {
			return false
		}
		v.s = s
		return f(v)
	case schemas.FieldStrings:
		ss := a.g.Strings(e)
		if a.index >= 0 {
			if a.index >= len(ss) {
				return false
			}
			v.s = ss[a.index]
			return f(v)
		}
		for _, s := range ss {
			v.s = s
			if f(v) {
				return true
			}
		}
		return false
	case schemas.FieldInt:
		i, ok := a.g.Int(e)
		if !ok {
			return false
		}
		v.kind, v.i = valInt, i
		return f(v)
	case schemas.FieldBool:
		b, ok := a.g.Bool(e)
		if !ok {
			return false
		}
		v.kind, v.b = valBool, b
		return f(v)
	case schemas.FieldTime:
		t := a.g.Time(e)
		if t.IsZero() {
			return false
		}
		// Rare in rules: a date compared as text costs one allocation.
		v.s = t.UTC().Format(time.RFC3339Nano)
		return f(v)
	case schemas.FieldMap:
		m := a.g.Map(e)
		if a.key == "" {
			for _, s := range m {
				v.s = s
				if f(v) {
					return true
				}
			}
			return false
		}
		s, ok := m[a.key]
		if !ok {
			return false
		}
		v.s = s
		return f(v)
	case schemas.FieldJSON:
		raw := a.g.JSON(e)
		if len(raw) == 0 {
			return false
		}
		// The event's bytes are not modified while rules run, so a string
		// view of them is safe and saves copying the object per rule.
		doc := unsafe.String(unsafe.SliceData(raw), len(raw))
		root := gjson.Parse(doc)
		if len(a.path) == 0 {
			v.s = root.Raw
			return f(v)
		}
		return walkJSON(root, a.path, f, 0)
	}
	return false
}

// maxJSONWalk bounds the recursion into nested arrays.
const maxJSONWalk = 16

// walkJSON follows path from r; arrays on the way are searched element by
// element, as Elasticsearch flattens arrays of objects.
func walkJSON(r gjson.Result, path []string, f func(v fval) bool, depth int) bool {
	if depth > maxJSONWalk {
		return false
	}
	if r.IsArray() {
		found := false
		r.ForEach(func(_, el gjson.Result) bool {
			if walkJSON(el, path, f, depth+1) {
				found = true
				return false
			}
			return true
		})
		return found
	}
	if len(path) == 0 {
		return jsonLeaf(r, f)
	}
	if !r.IsObject() {
		return false
	}
	var next gjson.Result
	seg := path[0]
	r.ForEach(func(k, val gjson.Result) bool {
		if k.Str == seg {
			next = val
			return false
		}
		return true
	})
	if !next.Exists() {
		return false
	}
	return walkJSON(next, path[1:], f, depth+1)
}

func jsonLeaf(r gjson.Result, f func(v fval) bool) bool {
	var v fval
	switch r.Type {
	case gjson.String:
		v = fval{s: r.Str}
	case gjson.Number:
		if i, err := strconv.ParseInt(r.Raw, 10, 64); err == nil {
			v = fval{kind: valInt, i: i, s: r.Raw}
		} else {
			v = fval{s: r.Raw}
		}
	case gjson.True, gjson.False:
		v = fval{kind: valBool, b: r.Type == gjson.True}
	case gjson.JSON:
		v = fval{s: r.Raw}
	default: // null
		return false
	}
	return f(v)
}

// exists reports whether the field has at least one value.
func (a *accessor) exists(e *schemas.Event) bool {
	return a.any(e, func(fval) bool { return true })
}
