package file

import (
	"math/rand/v2"
	"testing"
)

func TestSeqSet(t *testing.T) {
	var s seqSet
	for _, v := range []uint64{1, 2, 3, 5, 6, 10, 4, 8, 9} {
		s.add(v)
	}
	if got := string(s.appendText(nil)); got != "1-6,8-10" {
		t.Fatalf("set = %s, want 1-6,8-10", got)
	}
	for v, want := range map[uint64]bool{0: false, 1: true, 6: true, 7: false, 8: true, 10: true, 11: false} {
		if s.has(v) != want {
			t.Errorf("has(%d) = %v", v, !want)
		}
	}
	s.pruneThrough(4)
	if got := string(s.appendText(nil)); got != "5-6,8-10" {
		t.Fatalf("after prune 4: %s", got)
	}
	s.pruneThrough(7)
	if got := string(s.appendText(nil)); got != "8-10" {
		t.Fatalf("after prune 7: %s", got)
	}
	s.add(20)
	s.add(30)
	s.capRanges(2)
	if got := string(s.appendText(nil)); got != "20-20,30-30" {
		t.Fatalf("after cap 2: %s", got)
	}
	var o seqSet
	o.add(21)
	o.add(25)
	s.union(&o)
	if got := string(s.appendText(nil)); got != "20-21,25-25,30-30" {
		t.Fatalf("after union: %s", got)
	}
}

// The ranges agree with a plain map under any order of inserts and prunes.
func TestSeqSetMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s seqSet
	m := map[uint64]bool{}
	var floor uint64
	for i := range 20000 {
		v := floor + 1 + r.Uint64N(300)
		s.add(v)
		m[v] = true
		if i%1000 == 999 {
			floor += 100
			s.pruneThrough(floor)
			for k := range m {
				if k <= floor {
					delete(m, k)
				}
			}
		}
	}
	for v := uint64(0); v < floor+400; v++ {
		if s.has(v) != m[v] {
			t.Fatalf("has(%d) = %v, map says %v", v, s.has(v), m[v])
		}
	}
	for i := 1; i < len(s.r); i++ {
		if s.r[i].lo <= s.r[i-1].hi+1 {
			t.Fatalf("ranges %v and %v overlap or touch", s.r[i-1], s.r[i])
		}
	}
	back, err := parseSeqSet(string(s.appendText(nil)))
	if err != nil || string(back.appendText(nil)) != string(s.appendText(nil)) {
		t.Fatalf("round trip: %v", err)
	}
}

// FuzzJournalLine: the index parser never panics, and what it accepts it
// writes back the same way.
func FuzzJournalLine(f *testing.F) {
	for _, seed := range []string{
		"c events-20261126T101500Z-000001.jsonl 1234 1-500,502-730",
		"s - 0 -",
		"c x 1 5-3",
		"c x -1 1-1",
		"q x 1 1-1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var st journalState
		if err := st.apply(line); err != nil {
			return
		}
		j := &journal{}
		again := string(j.appendLine('s', st.file, st.size, &st.written))
		var st2 journalState
		if err := st2.apply(again[:len(again)-1]); err != nil {
			t.Fatalf("re-parse %q: %v", again, err)
		}
		if st2.file != st.file || st2.size != st.size || string(st2.written.appendText(nil)) != string(st.written.appendText(nil)) {
			t.Fatalf("round trip changed %q into %q", line, again)
		}
	})
}
