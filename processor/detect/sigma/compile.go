package sigma

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Options are what Compile needs besides the rule.
type Options struct {
	// Mapping resolves logsources and field names; nil means DefaultMapping.
	Mapping *Mapping
	// Placeholders are the values of %name% for the expand modifier.
	Placeholders map[string][]string
}

// Compiled is a rule ready to run: its logsource entry and a matcher tree.
// It is immutable and safe for concurrent use.
type Compiled struct {
	Rule      *Rule
	Logsource *LogsourceMapping
	// Warnings are problems that do not stop the rule from loading, such
	// as a value that can never match the type of its field.
	Warnings []string

	cond node
	// order is the rule's position in its Set, for a stable result order.
	order int
}

// Match tests the rule's detection on e. It does not check the logsource:
// a Set does that once for every rule of a logsource.
func (c *Compiled) Match(e *schemas.Event) bool { return c.cond.eval(e) }

// Compile resolves a parsed rule against the mapping and builds its matcher.
// The error is an *UnsupportedError when the rule is valid Sigma crowsnest
// cannot run, or a plain error when the rule is invalid.
func Compile(r *Rule, opts Options) (*Compiled, error) {
	if r.Correlation != nil {
		return nil, unsupported("correlation", "a correlation rule is compiled with its rules by the detection engine")
	}
	m := opts.Mapping
	if m == nil {
		var err error
		if m, err = DefaultMapping(); err != nil {
			return nil, err
		}
	}
	ls, ok := m.Logsource(r.Logsource)
	if !ok {
		return nil, unsupported("logsource", "no crowsnest events for logsource %s", r.Logsource)
	}
	if r.Detection.Timeframe != "" {
		return nil, unsupported("timeframe", "detection.timeframe belongs to the dropped aggregation syntax; write a correlation rule")
	}
	c := &compiler{ls: ls, mapping: m, placeholders: opts.Placeholders}
	c.resolve = ls.resolve
	searches := map[string]node{}
	var names []string
	for _, s := range r.Detection.Searches {
		n, err := c.compileSearch(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		searches[s.Name] = n
		names = append(names, s.Name)
	}
	var conds []node
	for _, text := range r.Detection.Conditions {
		expr, err := ParseCondition(text)
		if err != nil {
			return nil, err
		}
		n, err := compileExpr(expr, searches, names)
		if err != nil {
			return nil, fmt.Errorf("condition %q: %w", text, err)
		}
		conds = append(conds, n)
	}
	out := &Compiled{Rule: r, Logsource: ls, Warnings: c.warnings}
	if len(conds) == 1 {
		out.cond = conds[0]
	} else {
		out.cond = orNode(conds)
	}
	return out, nil
}

type compiler struct {
	ls           *LogsourceMapping
	mapping      *Mapping
	placeholders map[string][]string
	resolve      func(name string) (accessor, error)
	warnings     []string
	preds        int // patterns compiled so far, bounded by maxPredsPerRule
}

// maxPredsPerRule bounds the patterns one rule may expand into (windash and
// placeholders multiply values), so a hostile rule file cannot exhaust memory.
const maxPredsPerRule = 100_000

func (c *compiler) warnf(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

func compileExpr(e Expr, searches map[string]node, names []string) (node, error) {
	switch e := e.(type) {
	case *Ref:
		n, ok := searches[e.Name]
		if !ok {
			return nil, fmt.Errorf("no detection identifier %q", e.Name)
		}
		return n, nil
	case *Not:
		n, err := compileExpr(e.Arg, searches, names)
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	case *And, *Or:
		var args []Expr
		if a, ok := e.(*And); ok {
			args = a.Args
		} else {
			args = e.(*Or).Args
		}
		kids := make([]node, 0, len(args))
		for _, a := range args {
			n, err := compileExpr(a, searches, names)
			if err != nil {
				return nil, err
			}
			kids = append(kids, n)
		}
		if _, ok := e.(*And); ok {
			return andNode(kids), nil
		}
		return orNode(kids), nil
	case *Of:
		matched := matchIdentifiers(e.Pattern, names)
		if len(matched) == 0 {
			return nil, fmt.Errorf("%s matches no detection identifier", e)
		}
		kids := make([]node, len(matched))
		for i, n := range matched {
			kids[i] = searches[n]
		}
		switch {
		case e.All:
			return andNode(kids), nil
		case e.Count == 1:
			return orNode(kids), nil
		default:
			return countNode{n: e.Count, kids: kids}, nil
		}
	}
	return nil, fmt.Errorf("unknown condition element %T", e)
}

func (c *compiler) compileSearch(s *Search) (node, error) {
	var alts []node
	for _, alt := range s.Alternatives {
		n, err := compileAlternative(alt, c)
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return orNode(alts), nil
}

func compileAlternative(alt Alternative, c *compiler) (node, error) {
	var items []node
	for _, it := range alt.Items {
		n, err := c.compileItem(it)
		if err != nil {
			if it.Field == "" {
				return nil, fmt.Errorf("keywords: %w", err)
			}
			return nil, fmt.Errorf("%s: %w", it.Field, err)
		}
		items = append(items, n)
	}
	if len(items) == 1 {
		return items[0], nil
	}
	return andNode(items), nil
}

// modifiers is an item's modifier chain, read once.
type modifiers struct {
	transforms []string // applied to each value, in order
	match      string   // "", contains, startswith, endswith, re, cidr, lt, lte, gt, gte, exists, fieldref
	all        bool
	cased      bool
	neq        bool
	reFlags    string
}

func readModifiers(mods []string) (modifiers, error) {
	var m modifiers
	setMatch := func(name string) error {
		switch {
		case m.match == "":
			m.match = name
		case m.match == "fieldref" && (name == "contains" || name == "startswith" || name == "endswith"):
			m.match = "fieldref-" + name
		case name == "fieldref" && (m.match == "contains" || m.match == "startswith" || m.match == "endswith"):
			m.match = "fieldref-" + m.match
		default:
			return fmt.Errorf("modifiers %s and %s cannot be combined", m.match, name)
		}
		return nil
	}
	for _, mod := range mods {
		var err error
		switch mod {
		case "contains", "startswith", "endswith", "re", "cidr", "lt", "lte", "gt", "gte", "exists", "fieldref":
			err = setMatch(mod)
		case "all":
			m.all = true
		case "cased":
			m.cased = true
		case "neq":
			m.neq = true
		case "i", "m", "s":
			if m.match != "re" {
				return m, fmt.Errorf("modifier %s applies to re only", mod)
			}
			m.reFlags += mod
		case "base64", "base64offset", "wide", "utf16le", "utf16be", "utf16", "windash", "expand":
			if m.match != "" && mod != "windash" && mod != "expand" {
				// pySigma applies modifiers left to right: an encoding
				// after contains would encode the wildcards.
				return m, fmt.Errorf("modifier %s after %s", mod, m.match)
			}
			m.transforms = append(m.transforms, mod)
		default:
			return m, unsupported("modifier:"+mod, "modifier %q is not implemented", mod)
		}
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// compileItem builds the matcher of one field (or keyword) item.
func (c *compiler) compileItem(it Item) (node, error) {
	m, err := readModifiers(it.Modifiers)
	if err != nil {
		return nil, err
	}
	var acc accessor
	if it.Field == "" {
		acc, err = c.keywordAccessor()
		if m.match == "" && !slices.Contains(m.transforms, "windash") {
			// A keyword is found anywhere in the text.
			m.match = "contains"
		}
	} else {
		acc, err = c.resolve(it.Field)
	}
	if err != nil {
		return nil, err
	}

	switch m.match {
	case "exists":
		if len(it.Values) != 1 || it.Values[0].Kind != ValueBool {
			return nil, errors.New("exists takes true or false")
		}
		return existsNode{acc: acc, want: it.Values[0].B}, nil
	}

	var preds []pred
	var null bool
	for _, v := range it.Values {
		if v.Kind == ValueNull {
			null = true
			continue
		}
		if v.Kind == ValueString && v.S == "" && m.match == "" && len(m.transforms) == 0 && !m.neq {
			// Documents omit empty strings, so "empty" and "absent" are one.
			null = true
			continue
		}
		ps, err := c.compileValue(acc, v, m)
		if err != nil {
			return nil, err
		}
		c.preds += len(ps)
		if c.preds > maxPredsPerRule {
			return nil, unsupported("size", "the rule expands to more than %d patterns", maxPredsPerRule)
		}
		preds = append(preds, ps...)
	}
	if m.all && len(it.Values) > 1 && null {
		return nil, errors.New("all with null among the values can never match")
	}
	var n node
	if len(preds) > 0 {
		item := &itemNode{acc: acc, all: m.all, neq: m.neq}
		item.preds = groupExact(preds, m.all)
		n = item
	}
	if null {
		nn := nullNode{acc: acc}
		if n == nil {
			return nn, nil
		}
		return orNode{nn, n}, nil
	}
	return n, nil
}

func (c *compiler) keywordAccessor() (accessor, error) {
	fields := c.mapping.Keywords
	if c.ls != nil {
		fields = c.ls.keywordFields(c.mapping)
	}
	if len(fields) == 0 {
		return accessor{}, unsupported("keywords", "no keyword fields configured for this logsource")
	}
	acc := accessor{name: "keywords", index: -1}
	for _, f := range fields {
		a, err := resolveECS(f)
		if err != nil {
			return accessor{}, err
		}
		if !a.isStringy() {
			return accessor{}, fmt.Errorf("keyword field %s is not text", f)
		}
		acc.multi = append(acc.multi, a)
	}
	return acc, nil
}

// compileValue turns one value into predicates (several when a modifier
// expands it: windash, base64offset, expand).
func (c *compiler) compileValue(acc accessor, v Value, m modifiers) ([]pred, error) {
	text := v.S
	if v.Kind == ValueString && acc.values != nil {
		if r, ok := acc.values[strings.ToLower(text)]; ok {
			text = r
		}
	}
	switch m.match {
	case "lt", "lte", "gt", "gte":
		f, err := numericValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.match, err)
		}
		return []pred{cmpPred{op: m.match, v: f}}, nil
	case "cidr":
		p, err := netip.ParsePrefix(strings.TrimSpace(text))
		if err != nil {
			return nil, fmt.Errorf("cidr %q: %w", text, err)
		}
		return []pred{cidrPred{p: p.Masked()}}, nil
	case "re":
		for _, t := range m.transforms {
			if t != "expand" {
				return nil, fmt.Errorf("modifier %s cannot apply to a regular expression", t)
			}
		}
		variants := []string{text}
		if slices.Contains(m.transforms, "expand") {
			var err error
			if variants, err = expandPlaceholders(text, c.placeholders); err != nil {
				return nil, err
			}
		}
		var out []pred
		for _, src := range variants {
			flags := m.reFlags
			if flags != "" {
				src = "(?" + flags + ")" + src
			}
			re, err := regexp.Compile(src)
			if err != nil {
				return nil, unsupported("regex", "%q does not compile in RE2 (no lookaround or backreferences): %v", text, err)
			}
			out = append(out, rePred{re: re})
		}
		return out, nil
	case "fieldref", "fieldref-contains", "fieldref-startswith", "fieldref-endswith":
		if len(m.transforms) > 0 {
			return nil, errors.New("fieldref cannot be combined with value transformations")
		}
		other, err := c.resolve(text)
		if err != nil {
			return nil, fmt.Errorf("fieldref: %w", err)
		}
		return []pred{fieldrefPred{other: other, shape: strings.TrimPrefix(strings.TrimPrefix(m.match, "fieldref"), "-"), cased: m.cased}}, nil
	}

	// String matching (with optional contains/startswith/endswith).
	if !acc.isStringy() && len(m.transforms) == 0 && m.match == "" {
		return c.typedValue(acc, v, text, m)
	}
	strs, err := c.transformValue(text, m.transforms)
	if err != nil {
		return nil, err
	}
	out := make([]pred, 0, len(strs))
	for _, s := range strs {
		switch m.match {
		case "contains":
			s = s.withStar(true, true)
		case "startswith":
			s = s.withStar(false, true)
		case "endswith":
			s = s.withStar(true, false)
		}
		p := strPred{m: newStrMatcher(s, m.cased)}
		if !acc.isStringy() {
			p.formatNumber = true
		}
		out = append(out, p)
	}
	return out, nil
}

// typedValue compiles a plain value against an integer or boolean field.
func (c *compiler) typedValue(acc accessor, v Value, text string, m modifiers) ([]pred, error) {
	switch acc.g.Kind {
	case schemas.FieldInt:
		switch v.Kind {
		case ValueInt:
			return []pred{intPred{v: v.I}}, nil
		case ValueBool:
			c.warnf("%s: value %v can never match integer field %s", acc.name, v.S, acc.g.Name)
			return []pred{neverPred{}}, nil
		}
		if i, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64); err == nil {
			return []pred{intPred{v: i}}, nil
		}
		s := parseSigmaString(text)
		if s.hasWildcards() {
			return []pred{strPred{m: newStrMatcher(s, m.cased), formatNumber: true}}, nil
		}
		c.warnf("%s: value %q can never match integer field %s", acc.name, text, acc.g.Name)
		return []pred{neverPred{}}, nil
	case schemas.FieldBool:
		if v.Kind == ValueBool {
			return []pred{boolPred{v: v.B}}, nil
		}
		if b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(text))); err == nil {
			return []pred{boolPred{v: b}}, nil
		}
		c.warnf("%s: value %q can never match boolean field %s", acc.name, text, acc.g.Name)
		return []pred{neverPred{}}, nil
	}
	return []pred{strPred{m: newStrMatcher(parseSigmaString(text), m.cased)}}, nil
}

// transformValue applies the value transformations in the order written.
func (c *compiler) transformValue(text string, transforms []string) ([]sigmaString, error) {
	raw := []string{text}
	// Placeholders and option prefixes rewrite the text as written; they
	// run before the wildcards are read.
	for _, t := range transforms {
		var next []string
		for _, r := range raw {
			var vs []string
			var err error
			switch t {
			case "expand":
				vs, err = expandPlaceholders(r, c.placeholders)
			case "windash":
				vs, err = windash(r)
			default:
				continue
			}
			if err != nil {
				return nil, err
			}
			next = append(next, vs...)
		}
		if next != nil {
			raw = next
		}
		if len(raw) > maxVariants {
			return nil, unsupported("modifier:"+t, "more than %d variants", maxVariants)
		}
	}
	var out []sigmaString
	for _, r := range raw {
		s := []sigmaString{parseSigmaString(r)}
		for _, t := range transforms {
			var err error
			if s, err = encodeValue(s, t); err != nil {
				return nil, err
			}
		}
		out = append(out, s...)
	}
	return out, nil
}

// encodeValue applies one encoding modifier.
func encodeValue(in []sigmaString, t string) ([]sigmaString, error) {
	var out []sigmaString
	for _, s := range in {
		switch t {
		case "wide", "utf16le", "utf16be", "utf16":
			enc := make(sigmaString, len(s))
			for i, p := range s {
				enc[i] = p
				if p.kind == pieceLit {
					bom := t == "utf16" && i == 0
					enc[i].lit = encodeUTF16(p.lit, t == "utf16be", bom)
				}
			}
			out = append(out, enc)
		case "base64", "base64offset":
			plain, ok := s.plain()
			if !ok {
				return nil, fmt.Errorf("%s of a value with wildcards", t)
			}
			if t == "base64" {
				out = append(out, literal(base64.StdEncoding.EncodeToString([]byte(plain))))
				continue
			}
			for _, o := range base64Offsets(plain) {
				out = append(out, literal(o))
			}
		default:
			out = append(out, s)
		}
	}
	return out, nil
}

func numericValue(v Value) (float64, error) {
	switch v.Kind {
	case ValueInt:
		return float64(v.I), nil
	case ValueFloat:
		return v.F, nil
	case ValueString:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
		if err == nil {
			return f, nil
		}
	}
	return 0, fmt.Errorf("%q is not a number", v.S)
}
