package sigma

import (
	"slices"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Keyword rules (and rules whose every path needs a keyword) can only match
// when one of their literals occurs in the keyword fields. A group scans
// those fields once per event with one Aho–Corasick automaton over every such
// literal, and skips the rules none of whose literals occurred: a few
// microseconds instead of one substring search per keyword per rule.

// maxPrefilterLiterals bounds the automaton (and the per-event bit set,
// which lives on the stack).
const maxPrefilterLiterals = 4096

// literalSet is a rule's necessary condition: one of lits (lower-case
// ASCII) occurs in one of the values of acc.
type literalSet struct {
	acc  *accessor
	lits []string
}

// keywordLiterals derives a rule's necessary literals, if it has them:
// under and, any child's; under or (and n-of), the union when every child
// has some over the same fields; nothing under not.
func keywordLiterals(n node) (literalSet, bool) {
	switch n := n.(type) {
	case *itemNode:
		if n.neq || n.acc.multi == nil {
			return literalSet{}, false
		}
		var lits []string
		for _, p := range n.preds {
			sp, ok := p.(strPred)
			if !ok {
				return literalSet{}, false
			}
			lit, ok := sp.m.necessaryLiteral()
			if !ok {
				return literalSet{}, false
			}
			lits = append(lits, lit)
		}
		return literalSet{acc: &n.acc, lits: lits}, len(lits) > 0
	case andNode:
		for _, k := range n {
			if ls, ok := keywordLiterals(k); ok {
				return ls, true
			}
		}
	case orNode:
		return unionLiterals(n)
	case countNode:
		if n.n == len(n.kids) {
			return keywordLiterals(andNode(n.kids))
		}
		return unionLiterals(n.kids)
	}
	return literalSet{}, false
}

func unionLiterals(kids []node) (literalSet, bool) {
	var out literalSet
	for i, k := range kids {
		ls, ok := keywordLiterals(k)
		if !ok {
			return literalSet{}, false
		}
		if i == 0 {
			out.acc = ls.acc
		} else if !sameFields(out.acc, ls.acc) {
			return literalSet{}, false
		}
		out.lits = append(out.lits, ls.lits...)
	}
	return out, len(kids) > 0
}

func sameFields(a, b *accessor) bool {
	if len(a.multi) != len(b.multi) {
		return false
	}
	for i := range a.multi {
		if a.multi[i].g.Name != b.multi[i].g.Name || a.multi[i].key != b.multi[i].key || !slices.Equal(a.multi[i].path, b.multi[i].path) {
			return false
		}
	}
	return true
}

// necessaryLiteral is a lower-case ASCII substring every match contains.
func (m *strMatcher) necessaryLiteral() (string, bool) {
	var lit string
	switch m.shape {
	case shapeExact, shapePrefix, shapeSuffix, shapeContains:
		lit = m.lit
		if !m.fold {
			lit = asciiLower(lit)
		}
	case shapeSegments:
		for _, s := range m.segs {
			if len(s) > len(lit) {
				lit = s
			}
		}
		if !m.fold {
			lit = asciiLower(lit)
		}
	default:
		return "", false
	}
	return lit, lit != "" && isASCII(lit)
}

// acMatcher is an Aho–Corasick automaton over lower-case ASCII literals,
// as a dense table: next[state*128+byte].
type acMatcher struct {
	next []int32
	out  [][]int32 // literal ids ending at each state (fail links folded in)
	n    int       // literals
}

func newACMatcher(lits []string) *acMatcher {
	m := &acMatcher{n: len(lits)}
	type trie struct {
		child map[byte]int32
		out   []int32
	}
	nodes := []trie{{child: map[byte]int32{}}}
	for id, lit := range lits {
		s := int32(0)
		for i := 0; i < len(lit); i++ {
			c := lit[i]
			nx, ok := nodes[s].child[c]
			if !ok {
				nx = int32(len(nodes))
				nodes = append(nodes, trie{child: map[byte]int32{}})
				nodes[s].child[c] = nx
			}
			s = nx
		}
		nodes[s].out = append(nodes[s].out, int32(id))
	}
	m.next = make([]int32, len(nodes)*128)
	m.out = make([][]int32, len(nodes))
	fail := make([]int32, len(nodes))
	// Breadth-first: each state's transitions and output, from its fail state's.
	queue := []int32{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		m.out[s] = append(m.out[s], nodes[s].out...)
		if s != 0 {
			m.out[s] = append(m.out[s], m.out[fail[s]]...)
		}
		for c := 0; c < 128; c++ {
			nx, ok := nodes[s].child[byte(c)]
			switch {
			case ok:
				if s == 0 {
					fail[nx] = 0
				} else {
					fail[nx] = m.next[int(fail[s])*128+c]
				}
				m.next[int(s)*128+c] = nx
				queue = append(queue, nx)
			case s == 0:
				m.next[c] = 0
			default:
				m.next[int(s)*128+c] = m.next[int(fail[s])*128+c]
			}
		}
	}
	return m
}

// scan marks in found the literals occurring in s (case-insensitively).
func (m *acMatcher) scan(s string, found *[maxPrefilterLiterals / 64]uint64) {
	state := int32(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			state = 0 // literals are ASCII: no match spans a non-ASCII byte
			continue
		}
		state = m.next[int(state)*128+int(lowerByte(c))]
		for _, id := range m.out[state] {
			found[id>>6] |= 1 << (id & 63)
		}
	}
}

// groupPrefilter is a group's automaton and the fields it scans.
type groupPrefilter struct {
	acc *accessor
	ac  *acMatcher
}

// found scans the fields of ev once.
func (p *groupPrefilter) found(e *schemas.Event, bits *[maxPrefilterLiterals / 64]uint64) {
	p.acc.any(e, func(v fval) bool {
		if v.kind == valString {
			p.ac.scan(v.s, bits)
		}
		return false
	})
}
