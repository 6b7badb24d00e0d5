package ecsdiff

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// A Kind is how a field differs.
type Kind string

const (
	OursOnly      Kind = "ours-only"       // we set it, the reference does not
	ReferenceOnly Kind = "elastic-only"    // the reference sets it, we do not
	Value         Kind = "value"           // both set, to different values
	ArrayScalar   Kind = "array-vs-scalar" // the reference has [x], we have x
)

var kinds = []Kind{OursOnly, ReferenceOnly, Value, ArrayScalar}

// A Diff is one field that differs.
type Diff struct {
	Field     string // the flattened key that differs
	Claim     string // the claimed field (or prefix) that covers it
	Kind      Kind
	Reference any
	Ours      any
}

func (d Diff) String() string {
	return fmt.Sprintf("%s [%s]: elastic %s, crowsnest %s", d.Field, d.Kind, show(d.Reference), show(d.Ours))
}

func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	const maxShow = 160
	if len(b) > maxShow {
		return string(b[:maxShow]) + "…"
	}
	return string(b)
}

// Flatten decodes a JSON object and returns its leaves by dotted path. Nested
// and dotted keys meet ({"event":{"kind":1}} and {"event.kind":1} both give
// "event.kind"); arrays are leaves.
func Flatten(doc []byte) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("flatten: %w", err)
	}
	out := make(map[string]any)
	flatten("", v, out)
	return out, nil
}

func flatten(prefix string, v map[string]any, out map[string]any) {
	for k, x := range v {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if m, ok := x.(map[string]any); ok {
			flatten(key, m, out)
			continue
		}
		if x != nil {
			out[key] = x
		}
	}
}

// Compare reports how ours differs from ref on the claimed fields. A claim
// covers the key itself and every key below it ("kubernetes.audit.user"
// covers kubernetes.audit.user.groups). Arrays compare as sets.
func Compare(ref, ours map[string]any, claims []string) []Diff {
	var diffs []Diff
	for _, claim := range claims {
		keys := map[string]bool{}
		for _, m := range []map[string]any{ref, ours} {
			for k := range m {
				if k == claim || strings.HasPrefix(k, claim+".") {
					keys[k] = true
				}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			r, o := ref[k], ours[k]
			if kind, differs := compare(r, o); differs {
				diffs = append(diffs, Diff{Field: k, Claim: claim, Kind: kind, Reference: r, Ours: o})
			}
		}
	}
	return diffs
}

func compare(r, o any) (Kind, bool) {
	switch {
	case r == nil && o == nil:
		return "", false
	case r == nil:
		return OursOnly, true
	case o == nil:
		return ReferenceOnly, true
	}
	ra, rIsArr := r.([]any)
	oa, oIsArr := o.([]any)
	switch {
	case rIsArr && oIsArr:
		if sameSet(ra, oa) {
			return "", false
		}
		return Value, true
	case rIsArr && len(ra) == 1 && reflect.DeepEqual(ra[0], o):
		return ArrayScalar, true
	case reflect.DeepEqual(r, o):
		return "", false
	}
	return Value, true
}

func sameSet(a, b []any) bool {
	key := func(s []any) []string {
		out := make([]string, len(s))
		for i, x := range s {
			j, _ := json.Marshal(x)
			out[i] = string(j)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(key(a), key(b))
}

// An Allowance is one documented difference: a row of the DIFFERENCES.md
// table `| field | shapes | kind | Elastic | crowsnest | why |`.
type Allowance struct {
	Field  string   // a flattened key or a claimed prefix
	Shapes []string // record shapes it applies to; "all" for every one
	Kind   Kind
	Line   int // in the markdown file, for messages
	used   bool
}

// An Allowlist is the parsed table.
type Allowlist struct {
	rows []*Allowance
}

// ParseAllowlist reads every table row whose first cell is a `field` and
// whose third cell is a Kind. Other lines are prose and ignored.
func ParseAllowlist(r io.Reader) (*Allowlist, error) {
	al := &Allowlist{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(t, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(t, "|"), "|")
		if len(cells) < 3 {
			continue
		}
		field := strings.TrimSpace(cells[0])
		if !strings.HasPrefix(field, "`") || !strings.HasSuffix(field, "`") || len(field) < 3 {
			continue
		}
		kind := Kind(strings.Trim(strings.TrimSpace(cells[2]), "`"))
		if !slices.Contains(kinds, kind) {
			return nil, fmt.Errorf("line %d: kind %q is not one of %v", line, kind, kinds)
		}
		var shapes []string
		for _, s := range strings.Split(cells[1], ",") {
			if s = strings.Trim(strings.TrimSpace(s), "`"); s != "" {
				shapes = append(shapes, s)
			}
		}
		al.rows = append(al.rows, &Allowance{Field: strings.Trim(field, "`"), Shapes: shapes, Kind: kind, Line: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read allowlist: %w", err)
	}
	return al, nil
}

// Allows reports whether d, seen on a record of shape, is documented, and
// marks the row used.
func (al *Allowlist) Allows(shape string, d Diff) bool {
	for _, a := range al.rows {
		if a.Kind != d.Kind || a.Field != d.Field && a.Field != d.Claim {
			continue
		}
		if slices.Contains(a.Shapes, "all") || slices.Contains(a.Shapes, shape) {
			a.used = true
			return true
		}
	}
	return false
}

// Unused returns the rows no difference matched: documentation of a
// difference that no longer exists.
func (al *Allowlist) Unused() []Allowance {
	var out []Allowance
	for _, a := range al.rows {
		if !a.used {
			out = append(out, *a)
		}
	}
	return out
}

// Len is the number of rows.
func (al *Allowlist) Len() int { return len(al.rows) }
