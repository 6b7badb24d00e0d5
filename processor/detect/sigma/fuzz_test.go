package sigma

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// FuzzRule: any bytes go through ParseAll, Compile, NewSet and Match
// without a panic, and the index never changes a result.
func FuzzRule(f *testing.F) {
	files, _ := filepath.Glob("testdata/compile/*.yml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(k8sHeader + "  s: {requestObject.a.b|contains|all: [x, '*?\\\\']}\n  condition: 1 of s* and not s"))
	f.Add([]byte(procHeader + "  s: {CommandLine|windash|base64offset|contains: '-x'}\n  condition: all of them"))
	f.Add([]byte(k8sHeader + "  s: {verb: [a, b, c, d, create]}\n  t: {verb: create}\n  condition: s or t"))
	m, err := DefaultMapping()
	if err != nil {
		f.Fatal(err)
	}
	events := []*schemas.Event{auditEvent(), processEvent("/bin/sh -c id"), {}}
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseAll(data)
		if err != nil {
			return
		}
		var compiled []*Compiled
		for _, r := range rules {
			c, err := Compile(r, Options{Mapping: m, Placeholders: map[string][]string{"x": {"a*", "b"}}})
			if err != nil {
				continue
			}
			_ = c.Describe()
			compiled = append(compiled, c)
		}
		set := NewSet(compiled)
		for _, e := range events {
			got := map[*Compiled]bool{}
			set.Match(e, func(c *Compiled) { got[c] = true })
			for _, c := range compiled {
				if got[c] != bruteForce(c, e) {
					t.Fatalf("index says %v for %s on %+v", got[c], c.Describe(), e.Crowsnest)
				}
			}
		}
	})
}

// FuzzCondition: the condition parser never panics, and what it accepts
// prints back to a condition that parses to the same tree.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{"a", "a and not (b or c)", "1 of sel_* and not all of filter*", "all of them", "3 of x* or y", "a | count() > 3", "((((a))))"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseCondition(s)
		if err != nil {
			return
		}
		again, err := ParseCondition(e.String())
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", s, e.String(), err)
		}
		if again.String() != e.String() {
			t.Fatalf("%q → %q → %q", s, e.String(), again.String())
		}
	})
}

// FuzzStringMatch: the fast paths agree with the general wildcard walk.
func FuzzStringMatch(f *testing.F) {
	f.Add("abc", "xxABCxx", false)
	f.Add("*ä*", "Ä", false)
	f.Add("a*b?c", "aXXbYc", true)
	f.Fuzz(func(t *testing.T, pattern, s string, cased bool) {
		p := parseSigmaString(pattern)
		m := newStrMatcher(p, cased)
		got := m.match(s)
		var g strMatcher
		g.fold = !cased
		g.shape = shapeGlob
		for _, pc := range p {
			if pc.kind != pieceLit {
				g.glob = append(g.glob, globRune{kind: pc.kind})
				continue
			}
			for _, r := range pc.lit {
				if g.fold {
					r = []rune(lowerFold(string(r)))[0]
				}
				g.glob = append(g.glob, globRune{kind: pieceLit, r: r})
			}
		}
		if isASCII(pattern) && isASCII(s) {
			if want := g.match(s); got != want {
				t.Fatalf("%q on %q (cased %v): fast path %v, wildcard walk %v", pattern, s, cased, got, want)
			}
		}
	})
}

// bruteForce is what a Set must compute: the logsource's sources and where
// clause, then the detection.
func bruteForce(c *Compiled, e *schemas.Event) bool {
	ok := false
	for _, s := range c.Logsource.Sources {
		if s == e.Crowsnest.Source {
			ok = true
		}
	}
	if !ok || c.Logsource.where != nil && !c.Logsource.where.eval(e) {
		return false
	}
	return c.Match(e)
}

// FuzzACMatcher: the automaton finds exactly the literals a plain
// case-insensitive search finds.
func FuzzACMatcher(f *testing.F) {
	f.Add("sudo,su,tty=", "sudo: bob : TTY=pts/0 ; COMMAND=/bin/su")
	f.Add("aab,ab,b", "xaabx")
	f.Add("ä,x", "ÄäX")
	f.Fuzz(func(t *testing.T, litList, text string) {
		var lits []string
		for _, l := range strings.Split(litList, ",") {
			l = asciiLower(l)
			if l != "" && isASCII(l) && len(lits) < 64 {
				lits = append(lits, l)
			}
		}
		if len(lits) == 0 {
			return
		}
		m := newACMatcher(lits)
		var found [maxPrefilterLiterals / 64]uint64
		m.scan(text, &found)
		for id, l := range lits {
			got := found[id>>6]&(1<<(id&63)) != 0
			want := indexFoldASCII(text, l) >= 0
			if got != want {
				t.Fatalf("literal %q in %q: automaton %v, search %v", l, text, got, want)
			}
		}
	})
}
