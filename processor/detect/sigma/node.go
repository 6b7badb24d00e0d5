package sigma

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// node is one element of a compiled condition. eval must not allocate on
// the common paths and must not panic on any event.
type node interface {
	eval(e *schemas.Event) bool
}

type (
	andNode   []node
	orNode    []node
	notNode   struct{ n node }
	countNode struct {
		n    int
		kids []node
	}
	// nullNode matches when the field has no value (Sigma null).
	nullNode   struct{ acc accessor }
	existsNode struct {
		acc  accessor
		want bool
	}
	// itemNode matches one field against its values: any value (or, with
	// all, every value) must match some value of the field; with neq the
	// field must be present and match none.
	itemNode struct {
		acc   accessor
		preds []pred
		all   bool
		neq   bool
	}
)

func (n andNode) eval(e *schemas.Event) bool {
	for _, k := range n {
		if !k.eval(e) {
			return false
		}
	}
	return true
}

func (n orNode) eval(e *schemas.Event) bool {
	for _, k := range n {
		if k.eval(e) {
			return true
		}
	}
	return false
}

func (n notNode) eval(e *schemas.Event) bool { return !n.n.eval(e) }

func (n countNode) eval(e *schemas.Event) bool {
	c := 0
	for _, k := range n.kids {
		if k.eval(e) {
			c++
			if c >= n.n {
				return true
			}
		}
	}
	return false
}

func (n nullNode) eval(e *schemas.Event) bool { return !n.acc.exists(e) }

func (n existsNode) eval(e *schemas.Event) bool { return n.acc.exists(e) == n.want }

func (n *itemNode) eval(e *schemas.Event) bool {
	if n.neq {
		if !n.acc.exists(e) {
			return false
		}
		for _, p := range n.preds {
			if n.acc.any(e, func(v fval) bool { return p.match(v, e) }) {
				return false
			}
		}
		return true
	}
	if n.all {
		for _, p := range n.preds {
			if !n.acc.any(e, func(v fval) bool { return p.match(v, e) }) {
				return false
			}
		}
		return true
	}
	if len(n.preds) == 1 {
		p := n.preds[0]
		return n.acc.any(e, func(v fval) bool { return p.match(v, e) })
	}
	return n.acc.any(e, func(v fval) bool {
		for _, p := range n.preds {
			if p.match(v, e) {
				return true
			}
		}
		return false
	})
}

// pred tests one value of a field.
type pred interface {
	match(v fval, e *schemas.Event) bool
}

type (
	strPred struct {
		m strMatcher
		// formatNumber: the field is numeric and the pattern has
		// wildcards, so numbers are matched as their decimal text.
		formatNumber bool
	}
	intPred   struct{ v int64 }
	boolPred  struct{ v bool }
	neverPred struct{}
	cmpPred   struct {
		op string
		v  float64
	}
	cidrPred struct{ p netip.Prefix }
	rePred   struct{ re *regexp.Regexp }
	// exactSet is many exact values in one lookup (lower-cased unless cased).
	exactSet struct {
		set   map[string]struct{}
		cased bool
	}
	fieldrefPred struct {
		other accessor
		shape string // "", contains, startswith, endswith
		cased bool
	}
)

func (p strPred) match(v fval, _ *schemas.Event) bool {
	switch v.kind {
	case valString:
		return p.m.match(v.s)
	case valInt:
		if v.s != "" {
			return p.m.match(v.s)
		}
		return p.m.match(strconv.FormatInt(v.i, 10))
	default:
		return p.m.match(strconv.FormatBool(v.b))
	}
}

func (p intPred) match(v fval, _ *schemas.Event) bool {
	switch v.kind {
	case valInt:
		return v.i == p.v
	case valString:
		i, err := strconv.ParseInt(v.s, 10, 64)
		return err == nil && i == p.v
	}
	return false
}

func (p boolPred) match(v fval, _ *schemas.Event) bool {
	switch v.kind {
	case valBool:
		return v.b == p.v
	case valString:
		b, err := strconv.ParseBool(v.s)
		return err == nil && b == p.v
	}
	return false
}

func (neverPred) match(fval, *schemas.Event) bool { return false }

func (p cmpPred) match(v fval, _ *schemas.Event) bool {
	var f float64
	switch v.kind {
	case valInt:
		f = float64(v.i)
	case valString:
		x, err := strconv.ParseFloat(v.s, 64)
		if err != nil {
			return false
		}
		f = x
	default:
		return false
	}
	switch p.op {
	case "lt":
		return f < p.v
	case "lte":
		return f <= p.v
	case "gt":
		return f > p.v
	default:
		return f >= p.v
	}
}

func (p cidrPred) match(v fval, _ *schemas.Event) bool {
	if v.kind != valString {
		return false
	}
	a, err := netip.ParseAddr(v.s)
	if err != nil {
		return false
	}
	return p.p.Contains(a.Unmap()) || p.p.Contains(a)
}

func (p rePred) match(v fval, _ *schemas.Event) bool {
	switch v.kind {
	case valString:
		return p.re.MatchString(v.s)
	case valInt:
		if v.s != "" {
			return p.re.MatchString(v.s)
		}
		return p.re.MatchString(strconv.FormatInt(v.i, 10))
	default:
		return p.re.MatchString(strconv.FormatBool(v.b))
	}
}

func (p *exactSet) match(v fval, _ *schemas.Event) bool {
	if v.kind != valString {
		return false
	}
	if p.cased {
		_, ok := p.set[v.s]
		return ok
	}
	return lookupFold(p.set, v.s)
}

// lookupFold looks s up in a set of lower-cased strings without allocating
// for short ASCII values.
func lookupFold(set map[string]struct{}, s string) bool {
	if !hasUpper(s) {
		_, ok := set[s]
		return ok
	}
	if len(s) <= 128 && isASCII(s) {
		var buf [128]byte
		for i := 0; i < len(s); i++ {
			buf[i] = lowerByte(s[i])
		}
		_, ok := set[string(buf[:len(s)])]
		return ok
	}
	_, ok := set[lowerFold(s)]
	return ok
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}

func (p fieldrefPred) match(v fval, e *schemas.Event) bool {
	if v.kind == valInt {
		return p.other.any(e, func(o fval) bool {
			return o.kind == valInt && o.i == v.i && p.shape == ""
		})
	}
	if v.kind != valString {
		return false
	}
	return p.other.any(e, func(o fval) bool {
		if o.kind != valString {
			return false
		}
		return compareRef(v.s, o.s, p.shape, p.cased)
	})
}

// compareRef compares a field value with the value of the referenced field.
func compareRef(s, ref, shape string, cased bool) bool {
	m := strMatcher{fold: !cased, lit: ref, ascii: isASCII(ref)}
	if m.fold {
		if !m.ascii {
			m.lit = lowerFold(ref)
		} else if hasUpper(ref) {
			// Fold s instead of allocating a lowered copy of ref.
			return compareRefSlow(s, ref, shape)
		}
	}
	switch shape {
	case "contains":
		m.shape = shapeContains
	case "startswith":
		m.shape = shapePrefix
	case "endswith":
		m.shape = shapeSuffix
	default:
		m.shape = shapeExact
	}
	return m.match(s)
}

func compareRefSlow(s, ref, shape string) bool {
	m := strMatcher{fold: true, lit: lowerFold(ref), ascii: true}
	switch shape {
	case "contains":
		m.shape = shapeContains
	case "startswith":
		m.shape = shapePrefix
	case "endswith":
		m.shape = shapeSuffix
	}
	return m.match(s)
}

// groupExact folds the exact-match string predicates of an OR into one set
// lookup; under all, every value must match, so nothing is folded.
func groupExact(preds []pred, all bool) []pred {
	if all {
		return preds
	}
	var folded, cased []string
	var rest []pred
	for _, p := range preds {
		sp, ok := p.(strPred)
		if !ok || sp.m.shape != shapeExact || sp.formatNumber {
			rest = append(rest, p)
			continue
		}
		if sp.m.fold {
			folded = append(folded, sp.m.lit)
		} else {
			cased = append(cased, sp.m.lit)
		}
	}
	const minSet = 4 // below this a few comparisons beat hashing
	if len(folded)+len(cased) < minSet {
		return preds
	}
	out := rest
	for _, group := range []struct {
		vals  []string
		cased bool
	}{{folded, false}, {cased, true}} {
		if len(group.vals) == 0 {
			continue
		}
		set := make(map[string]struct{}, len(group.vals))
		for _, v := range group.vals {
			set[v] = struct{}{}
		}
		out = append(out, &exactSet{set: set, cased: group.cased})
	}
	return out
}

// describe renders a compiled condition for golden files and lint output.
func describe(n node) string {
	switch n := n.(type) {
	case andNode:
		return describeList("and", n)
	case orNode:
		return describeList("or", n)
	case notNode:
		return "not " + describe(n.n)
	case countNode:
		return strconv.Itoa(n.n) + " of " + describeList("", n.kids)
	case nullNode:
		return n.acc.describe() + " is null"
	case existsNode:
		if n.want {
			return n.acc.describe() + " exists"
		}
		return n.acc.describe() + " does not exist"
	case *itemNode:
		var b strings.Builder
		b.WriteString(n.acc.describe())
		switch {
		case n.neq:
			b.WriteString(" none of ")
		case n.all:
			b.WriteString(" all of ")
		default:
			b.WriteString(" any of ")
		}
		parts := make([]string, len(n.preds))
		for i, p := range n.preds {
			parts[i] = describePred(p)
		}
		b.WriteString("[" + strings.Join(parts, ", ") + "]")
		return b.String()
	}
	return "?"
}

func describeList(op string, kids []node) string {
	parts := make([]string, len(kids))
	for i, k := range kids {
		parts[i] = describe(k)
	}
	if op == "" {
		return "(" + strings.Join(parts, "; ") + ")"
	}
	return "(" + strings.Join(parts, " "+op+" ") + ")"
}

func (a *accessor) describe() string {
	if a.multi != nil {
		names := make([]string, len(a.multi))
		for i := range a.multi {
			names[i] = a.multi[i].describe()
		}
		return "keywords{" + strings.Join(names, ",") + "}"
	}
	s := a.g.Name
	switch {
	case a.key != "":
		s += "[" + strconv.Quote(a.key) + "]"
	case a.path != nil:
		s += ":" + strings.Join(a.path, ".")
	case a.index >= 0:
		s += "[" + strconv.Itoa(a.index) + "]"
	}
	for i := range a.alt {
		s += "|" + a.alt[i].describe()
	}
	return s
}

func describePred(p pred) string {
	switch p := p.(type) {
	case strPred:
		shape := [...]string{"eq", "prefix", "suffix", "contains", "any", "segments", "glob"}[p.m.shape]
		c := ""
		if !p.m.fold {
			c = " cased"
		}
		if p.m.shape == shapeSegments {
			pat := strings.Join(p.m.segs, "*")
			if !p.m.anchorL {
				pat = "*" + pat
			}
			if !p.m.anchorR {
				pat += "*"
			}
			return shape + c + " " + strconv.Quote(pat)
		}
		if p.m.shape == shapeGlob {
			var b strings.Builder
			for _, r := range p.m.glob {
				switch r.kind {
				case pieceStar:
					b.WriteByte('*')
				case pieceOne:
					b.WriteByte('?')
				default:
					b.WriteRune(r.r)
				}
			}
			return shape + c + " " + strconv.Quote(b.String())
		}
		return shape + c + " " + strconv.Quote(p.m.lit)
	case intPred:
		return "int " + strconv.FormatInt(p.v, 10)
	case boolPred:
		return "bool " + strconv.FormatBool(p.v)
	case neverPred:
		return "never"
	case cmpPred:
		return p.op + " " + strconv.FormatFloat(p.v, 'g', -1, 64)
	case cidrPred:
		return "cidr " + p.p.String()
	case rePred:
		return "re " + strconv.Quote(p.re.String())
	case *exactSet:
		keys := make([]string, 0, len(p.set))
		for k := range p.set {
			keys = append(keys, strconv.Quote(k))
		}
		slices.Sort(keys)
		c := ""
		if p.cased {
			c = " cased"
		}
		return "set" + c + " {" + strings.Join(keys, " ") + "}"
	case fieldrefPred:
		return "fieldref " + p.shape + " " + p.other.describe()
	}
	return "?"
}

// Describe renders the compiled detection, one line (for lint and tests).
func (c *Compiled) Describe() string { return describe(c.cond) }
