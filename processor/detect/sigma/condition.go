package sigma

import (
	"fmt"
	"strconv"
	"strings"
)

// Expr is a parsed condition.
type Expr interface {
	String() string
}

// And, Or and Not are the boolean operators.
type (
	And struct{ Args []Expr }
	Or  struct{ Args []Expr }
	Not struct{ Arg Expr }
	// Ref names one detection identifier.
	Ref struct{ Name string }
	// Of is "1 of pattern", "all of pattern" or "N of pattern"; Pattern
	// "them" means every identifier not starting with an underscore. All
	// is set for "all of"; otherwise Count is the number required.
	Of struct {
		All     bool
		Count   int
		Pattern string
	}
)

func (e *And) String() string { return joinExprs("and", e.Args) }
func (e *Or) String() string  { return joinExprs("or", e.Args) }
func (e *Not) String() string { return "not " + e.Arg.String() }
func (e *Ref) String() string { return e.Name }
func (e *Of) String() string {
	if e.All {
		return "all of " + e.Pattern
	}
	return strconv.Itoa(e.Count) + " of " + e.Pattern
}

func joinExprs(op string, args []Expr) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = a.String()
	}
	return "(" + strings.Join(parts, " "+op+" ") + ")"
}

// maxConditionLen and maxConditionDepth bound the parser's work on hostile input.
const (
	maxConditionLen   = 64 << 10
	maxConditionDepth = 100
)

type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokIdent
	tokLParen
	tokRParen
	tokPipe
)

type token struct {
	kind tokenKind
	text string
	pos  int
}

func lexCondition(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tokLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tokRParen, ")", i})
			i++
		case c == '|':
			// What follows is the dropped aggregation syntax; the parser
			// reports it whole rather than tripping over its operators.
			toks = append(toks, token{tokPipe, "|", i})
			return append(toks, token{tokEOF, "", len(s)}), nil
		case identByte(c):
			j := i
			for j < len(s) && identByte(s[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, s[i:j], i})
			i = j
		default:
			return nil, fmt.Errorf("condition: unexpected %q at %d", c, i)
		}
	}
	return append(toks, token{tokEOF, "", len(s)}), nil
}

func identByte(c byte) bool {
	return c == '_' || c == '-' || c == '*' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ParseCondition parses one condition string. Operator precedence is
// not > and > or; "x of" binds to the identifier pattern after it.
func ParseCondition(s string) (Expr, error) {
	if len(s) > maxConditionLen {
		return nil, fmt.Errorf("condition: %d bytes, more than %d", len(s), maxConditionLen)
	}
	toks, err := lexCondition(s)
	if err != nil {
		return nil, err
	}
	p := &condParser{toks: toks}
	e, err := p.or(0)
	if err != nil {
		return nil, err
	}
	switch t := p.peek(); t.kind {
	case tokEOF:
		return e, nil
	case tokPipe:
		return nil, &UnsupportedError{Construct: "aggregation", Reason: "aggregation after | in the condition was dropped from the specification; write a correlation rule"}
	default:
		return nil, fmt.Errorf("condition: unexpected %q at %d", t.text, t.pos)
	}
}

type condParser struct {
	toks []token
	i    int
}

func (p *condParser) peek() token { return p.toks[p.i] }
func (p *condParser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func isKeyword(t token, kw string) bool { return t.kind == tokIdent && strings.EqualFold(t.text, kw) }

func (p *condParser) or(depth int) (Expr, error) {
	if depth > maxConditionDepth {
		return nil, fmt.Errorf("condition: nested deeper than %d", maxConditionDepth)
	}
	first, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	args := []Expr{first}
	for isKeyword(p.peek(), "or") {
		p.next()
		e, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	if len(args) == 1 {
		return first, nil
	}
	return &Or{Args: args}, nil
}

func (p *condParser) and(depth int) (Expr, error) {
	first, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	args := []Expr{first}
	for isKeyword(p.peek(), "and") {
		p.next()
		e, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	if len(args) == 1 {
		return first, nil
	}
	return &And{Args: args}, nil
}

func (p *condParser) not(depth int) (Expr, error) {
	if isKeyword(p.peek(), "not") {
		p.next()
		if depth > maxConditionDepth {
			return nil, fmt.Errorf("condition: nested deeper than %d", maxConditionDepth)
		}
		e, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return &Not{Arg: e}, nil
	}
	return p.primary(depth)
}

func (p *condParser) primary(depth int) (Expr, error) {
	t := p.next()
	switch t.kind {
	case tokLParen:
		e, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if r := p.next(); r.kind != tokRParen {
			return nil, fmt.Errorf("condition: want ) at %d, got %q", r.pos, r.text)
		}
		return e, nil
	case tokIdent:
		for _, kw := range []string{"and", "or", "of"} {
			if strings.EqualFold(t.text, kw) {
				return nil, fmt.Errorf("condition: unexpected %q at %d", t.text, t.pos)
			}
		}
		if isKeyword(p.peek(), "of") {
			p.next()
			of := &Of{}
			switch {
			case strings.EqualFold(t.text, "all"):
				of.All = true
			case strings.EqualFold(t.text, "any"):
				of.Count = 1
			default:
				n, err := strconv.Atoi(t.text)
				if err != nil || n < 1 {
					return nil, fmt.Errorf("condition: %q of: want 1, all or a positive number", t.text)
				}
				of.Count = n
			}
			pat := p.next()
			if pat.kind != tokIdent || isKeyword(pat, "and") || isKeyword(pat, "or") || isKeyword(pat, "not") {
				return nil, fmt.Errorf("condition: want an identifier pattern or them after %q of at %d", t.text, pat.pos)
			}
			of.Pattern = pat.text
			return of, nil
		}
		if strings.Contains(t.text, "*") {
			return nil, fmt.Errorf("condition: wildcard %q needs 1 of or all of", t.text)
		}
		return &Ref{Name: t.text}, nil
	case tokEOF:
		return nil, fmt.Errorf("condition: unexpected end")
	}
	return nil, fmt.Errorf("condition: unexpected %q at %d", t.text, t.pos)
}

// matchIdentifiers returns the detection identifiers a pattern of an "of"
// names, in document order: "them" is every identifier not starting with
// an underscore; "*" in a pattern matches any run of characters.
func matchIdentifiers(pattern string, names []string) []string {
	var out []string
	for _, n := range names {
		if pattern == "them" {
			if !strings.HasPrefix(n, "_") {
				out = append(out, n)
			}
			continue
		}
		if globMatch(pattern, n) {
			out = append(out, n)
		}
	}
	return out
}

// globMatch matches s against p where '*' stands for any run; case-sensitive,
// as identifiers are.
func globMatch(p, s string) bool {
	star, match := -1, 0
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(p) && p[i] == '*':
			star, match = i, j
			i++
		case i < len(p) && p[i] == s[j]:
			i++
			j++
		case star >= 0:
			i = star + 1
			match++
			j = match
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}
