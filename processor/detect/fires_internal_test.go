package detect

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/detect/sigma"
)

// TestTemporalOrderedScan: fires finds, without sorting, the chain the
// greedy walk over the matches stably sorted by event time finds (the
// definition it replaced), on random windows with many equal times.
func TestTemporalOrderedScan(t *testing.T) {
	sortedGreedy := func(hits []corrHit, bases int) ([]string, bool) {
		sorted := slices.Clone(hits)
		slices.SortStableFunc(sorted, func(a, b corrHit) int { return a.At.Compare(b.At) })
		var chain []corrHit
		for _, h := range sorted {
			if h.Base == len(chain) {
				chain = append(chain, h)
				if len(chain) == bases {
					return hitIDs(chain), true
				}
			}
		}
		return nil, false
	}
	rng := rand.New(rand.NewPCG(5, 5))
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	found := 0
	for round := range 3000 {
		bases := 1 + rng.IntN(3)
		c := &Correlation{typ: "temporal_ordered", bases: make([]corrBase, bases)}
		g := &corrGroup{}
		for i := range rng.IntN(12) {
			g.Hits = append(g.Hits, corrHit{At: at.Add(time.Duration(rng.IntN(4)) * time.Second), EventID: strconv.Itoa(i), Base: rng.IntN(bases)})
		}
		want, wantOK := sortedGreedy(g.Hits, bases)
		got, ok := c.fires(g)
		if ok != wantOK || !slices.Equal(got, want) {
			t.Fatalf("round %d, hits %+v: got %v %v, want %v %v", round, g.Hits, got, ok, want, wantOK)
		}
		if ok {
			found++
		}
	}
	if found < 100 {
		t.Fatalf("only %d of 3000 windows fired: the comparison proves little", found)
	}
}

// TestTemporalConditions: a gt/gte condition on temporal counts the
// distinct rules that matched in the window; on temporal_ordered, the
// longest run of them in the correlation's order. Without one, every rule
// is needed (in order for temporal_ordered).
func TestTemporalConditions(t *testing.T) {
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	hit := func(id string, base, sec int) corrHit {
		return corrHit{At: at.Add(time.Duration(sec) * time.Second), EventID: id, Base: base}
	}
	gte := func(n int64) *sigma.Threshold {
		return &sigma.Threshold{Ops: []sigma.ThresholdOp{{Op: "gte", Value: n}}}
	}
	cases := []struct {
		name      string
		typ       string
		threshold *sigma.Threshold
		hits      []corrHit
		want      []string // nil: does not fire
	}{
		{"temporal, all three", "temporal", nil, []corrHit{hit("c", 2, 0), hit("a", 0, 1), hit("b", 1, 2)}, []string{"a", "b", "c"}},
		{"temporal, two of three without a condition", "temporal", nil, []corrHit{hit("a", 0, 0), hit("c", 2, 1)}, nil},
		{"temporal, two of three, gte 2", "temporal", gte(2), []corrHit{hit("c", 2, 0), hit("a", 0, 1)}, []string{"a", "c"}},
		{"temporal, one rule twice, gte 2", "temporal", gte(2), []corrHit{hit("a", 0, 0), hit("a2", 0, 1)}, nil},
		{"ordered, two in order, gte 2", "temporal_ordered", gte(2), []corrHit{hit("a", 0, 0), hit("c", 2, 1)}, []string{"a", "c"}},
		{"ordered, two out of order, gte 2", "temporal_ordered", gte(2), []corrHit{hit("c", 2, 0), hit("a", 0, 1)}, nil},
		{"ordered, same time in arrival order, gte 2", "temporal_ordered", gte(2), []corrHit{hit("b", 1, 0), hit("c", 2, 0)}, []string{"b", "c"}},
		{"ordered, longest run wins", "temporal_ordered", gte(2), []corrHit{hit("b", 1, 0), hit("a", 0, 1), hit("b2", 1, 2), hit("c", 2, 3)}, []string{"a", "b2", "c"}},
		{"ordered, two in order without a condition", "temporal_ordered", nil, []corrHit{hit("a", 0, 0), hit("c", 2, 1)}, nil},
	}
	for _, tc := range cases {
		c := &Correlation{typ: tc.typ, threshold: tc.threshold, bases: make([]corrBase, 3)}
		got, ok := c.fires(&corrGroup{Hits: tc.hits})
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("%s: fires = %v %v, want %v", tc.name, got, ok, tc.want)
		}
	}
}

// TestLongestChain: on random windows the longest ordered chain is a valid
// chain (rules strictly in order, each match after the previous), it is
// every rule long exactly when the greedy walk finds the whole chain, and
// no chain is longer (checked against every subsequence of matches for
// small windows).
func TestLongestChain(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for round := range 2000 {
		bases := 1 + rng.IntN(4)
		var hits []corrHit
		for i := range rng.IntN(10) {
			hits = append(hits, corrHit{At: at.Add(time.Duration(rng.IntN(4)) * time.Second), EventID: strconv.Itoa(i), Base: rng.IntN(bases)})
		}
		chain := longestChain(hits, bases)
		pos := func(h corrHit) int {
			return slices.IndexFunc(hits, func(x corrHit) bool { return x.EventID == h.EventID })
		}
		for k := 1; k < len(chain); k++ {
			if chain[k].Base <= chain[k-1].Base || !after(hits, pos(chain[k]), pos(chain[k-1])) {
				t.Fatalf("round %d: %+v is not a chain of %+v", round, chain, hits)
			}
		}
		full := &Correlation{typ: "temporal_ordered", bases: make([]corrBase, bases)}
		_, greedy := full.fires(&corrGroup{Hits: hits})
		if greedy != (len(chain) == bases) {
			t.Fatalf("round %d: greedy %v, longest chain %d of %d rules, hits %+v", round, greedy, len(chain), bases, hits)
		}
		// Brute force: the longest valid subsequence.
		longest := 0
		for mask := 1; mask < 1<<len(hits); mask++ {
			var sub []int
			for i := range hits {
				if mask&(1<<i) != 0 {
					sub = append(sub, i)
				}
			}
			slices.SortStableFunc(sub, func(a, b int) int {
				if after(hits, a, b) {
					return 1
				}
				return -1
			})
			ok := true
			for k := 1; k < len(sub) && ok; k++ {
				ok = hits[sub[k]].Base > hits[sub[k-1]].Base
			}
			if ok {
				longest = max(longest, len(sub))
			}
		}
		if len(chain) != longest {
			t.Fatalf("round %d: longest chain %d, brute force %d, hits %+v", round, len(chain), longest, hits)
		}
	}
}
