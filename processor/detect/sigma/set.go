package sigma

import (
	"slices"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// A Set holds compiled rules indexed so that an event is tested only
// against rules that can match it: first by the event's source
// (crowsnest.source), then by the logsource entry's where clause (tested
// once per entry), then by the exact value of one field most rules of the
// entry require (for Kubernetes audit rules, usually the verb or resource).
// A Set is immutable and safe for concurrent use.
type Set struct {
	rules    []*Compiled
	bySource map[string][]*group
}

type group struct {
	ls    *LogsourceMapping
	where node
	// key is the indexed field; buckets hold the rules that require one
	// of its values (lower-cased); rest the rules that do not.
	key     *accessor
	buckets map[string][]entry
	rest    []entry
	// pre, when set, finds the keyword literals of an event; an entry with
	// lits is tested only when one of them occurs.
	pre *groupPrefilter
}

// entry is a rule in a group, with the ids of its necessary keyword
// literals (none: always tested).
type entry struct {
	c    *Compiled
	lits []int32
}

// NewSet indexes rules; their order is the order Match reports them in.
func NewSet(rules []*Compiled) *Set {
	s := &Set{rules: rules, bySource: map[string][]*group{}}
	byLS := map[*LogsourceMapping][]*Compiled{}
	var order []*LogsourceMapping
	for i, r := range rules {
		r.order = i
		if _, ok := byLS[r.Logsource]; !ok {
			order = append(order, r.Logsource)
		}
		byLS[r.Logsource] = append(byLS[r.Logsource], r)
	}
	for _, ls := range order {
		g := newGroup(ls, byLS[ls])
		for _, src := range ls.Sources {
			s.bySource[src] = append(s.bySource[src], g)
		}
	}
	return s
}

// Rules returns the rules of the set in order.
func (s *Set) Rules() []*Compiled { return s.rules }

func newGroup(ls *LogsourceMapping, rules []*Compiled) *group {
	g := &group{ls: ls, where: ls.where}
	entries := g.prefilter(rules)
	// Pick the field the most rules require an exact value of.
	counts := map[string]int{}
	reqs := make([]map[string]*constraint, len(rules))
	var accs = map[string]accessor{}
	for i, r := range rules {
		reqs[i] = map[string]*constraint{}
		for _, c := range required(r.cond) {
			if _, dup := reqs[i][c.acc.g.Name]; dup {
				continue
			}
			reqs[i][c.acc.g.Name] = c
			counts[c.acc.g.Name]++
			accs[c.acc.g.Name] = c.acc
		}
	}
	best, bestN := "", 0
	for name, n := range counts {
		if n > bestN || n == bestN && name < best {
			best, bestN = name, n
		}
	}
	if bestN < 2 {
		g.rest = entries
		return g
	}
	a := accs[best]
	g.key = &a
	g.buckets = map[string][]entry{}
	for i, en := range entries {
		c, ok := reqs[i][best]
		if !ok {
			g.rest = append(g.rest, en)
			continue
		}
		for _, v := range c.values {
			if !slices.ContainsFunc(g.buckets[v], func(x entry) bool { return x.c == en.c }) {
				g.buckets[v] = append(g.buckets[v], en)
			}
		}
	}
	return g
}

// prefilter gives each rule its keyword literals and builds the group's
// automaton over them.
func (g *group) prefilter(rules []*Compiled) []entry {
	entries := make([]entry, len(rules))
	ids := map[string]int32{}
	var lits []string
	var acc *accessor
	for i, r := range rules {
		entries[i].c = r
		ls, ok := keywordLiterals(r.cond)
		if !ok || acc != nil && !sameFields(acc, ls.acc) || len(lits)+len(ls.lits) > maxPrefilterLiterals {
			continue
		}
		acc = ls.acc
		for _, l := range ls.lits {
			id, seen := ids[l]
			if !seen {
				id = int32(len(lits))
				ids[l] = id
				lits = append(lits, l)
			}
			if !slices.Contains(entries[i].lits, id) {
				entries[i].lits = append(entries[i].lits, id)
			}
		}
	}
	if len(lits) > 0 {
		g.pre = &groupPrefilter{acc: acc, ac: newACMatcher(lits)}
	}
	return entries
}

// Match calls fn, in rule order within each logsource, with every rule
// whose detection matches e. It allocates nothing when no rule matches.
func (s *Set) Match(e *schemas.Event, fn func(r *Compiled)) {
	for _, g := range s.bySource[e.Crowsnest.Source] {
		if g.where != nil && !g.where.eval(e) {
			continue
		}
		var bucket []entry
		if g.key != nil {
			if v := g.key.g.String(e); v != "" {
				bucket = lookupBucket(g.buckets, v)
			}
		}
		g.run(e, bucket, fn)
	}
}

// run tests the bucket's rules and the unindexed ones, merged by order; a
// rule with keyword literals only when the automaton found one of them.
func (g *group) run(e *schemas.Event, bucket []entry, fn func(r *Compiled)) {
	var found [maxPrefilterLiterals / 64]uint64
	scanned := false
	i, j := 0, 0
	for i < len(bucket) || j < len(g.rest) {
		var en entry
		if j >= len(g.rest) || i < len(bucket) && bucket[i].c.order < g.rest[j].c.order {
			en = bucket[i]
			i++
		} else {
			en = g.rest[j]
			j++
		}
		if en.lits != nil {
			if !scanned {
				g.pre.found(e, &found)
				scanned = true
			}
			hit := false
			for _, id := range en.lits {
				if found[id>>6]&(1<<(id&63)) != 0 {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
		}
		if en.c.cond.eval(e) {
			fn(en.c)
		}
	}
}

func lookupBucket(m map[string][]entry, s string) []entry {
	if !hasUpper(s) {
		return m[s]
	}
	if len(s) <= 128 && isASCII(s) {
		var buf [128]byte
		for i := 0; i < len(s); i++ {
			buf[i] = lowerByte(s[i])
		}
		return m[string(buf[:len(s)])]
	}
	return m[lowerFold(s)]
}

// constraint says a rule can only match when the field's value is one of
// values (lower-cased).
type constraint struct {
	acc    accessor
	values []string
}

// required derives the constraints a condition implies: an item of exact
// values on a single-valued string field; under and, any child's; under
// or, the fields every child constrains (values merged); nothing under not.
func required(n node) []*constraint {
	switch n := n.(type) {
	case *itemNode:
		if n.neq || n.all && len(n.preds) > 1 || n.acc.g.Kind != schemas.FieldString || n.acc.key != "" || n.acc.path != nil || n.acc.multi != nil || n.acc.alt != nil {
			return nil
		}
		var vals []string
		for _, p := range n.preds {
			switch p := p.(type) {
			case strPred:
				if p.m.shape != shapeExact || p.formatNumber {
					return nil
				}
				vals = append(vals, lowerFold(p.m.lit))
			case *exactSet:
				for v := range p.set {
					vals = append(vals, lowerFold(v))
				}
			default:
				return nil
			}
		}
		slices.Sort(vals)
		return []*constraint{{acc: n.acc, values: vals}}
	case andNode:
		var out []*constraint
		for _, k := range n {
			out = append(out, required(k)...)
		}
		return out
	case orNode:
		if len(n) == 0 {
			return nil
		}
		common := required(n[0])
		for _, k := range n[1:] {
			next := required(k)
			var merged []*constraint
			for _, c := range common {
				for _, d := range next {
					if c.acc.g.Name == d.acc.g.Name {
						vals := slices.Concat(c.values, d.values)
						slices.Sort(vals)
						merged = append(merged, &constraint{acc: c.acc, values: slices.Compact(vals)})
						break
					}
				}
			}
			common = merged
			if len(common) == 0 {
				return nil
			}
		}
		return common
	case countNode:
		if n.n == len(n.kids) {
			return required(andNode(n.kids))
		}
	}
	return nil
}
