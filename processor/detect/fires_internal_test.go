package detect

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
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
