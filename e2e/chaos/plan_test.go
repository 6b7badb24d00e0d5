package chaos

import (
	"math/rand/v2"
	"testing"
)

// Kill points rise through the run, one per slice of 5%..90%, so no two
// kills bunch up and none falls after the run is nearly done.
func TestPlanKills(t *testing.T) {
	for _, tc := range []struct{ kills, total int }{{1, 5000}, {5, 200_000}, {10, 100_000}, {10, 15}} {
		for seed := range uint64(50) {
			at := planKills(rand.New(rand.NewPCG(seed, 1)), tc.kills, tc.total)
			if len(at) != tc.kills {
				t.Fatalf("%d kills planned, want %d", len(at), tc.kills)
			}
			for i, p := range at {
				lo := int(float64(tc.total) * (0.05 + 0.85*float64(i)/float64(tc.kills)))
				hi := int(float64(tc.total) * (0.05 + 0.85*float64(i+1)/float64(tc.kills)))
				if p < lo || p > max(hi-1, lo) {
					t.Errorf("kills=%d total=%d seed=%d: kill %d at %d, outside its slice [%d, %d)", tc.kills, tc.total, seed, i, p, lo, hi)
				}
				if i > 0 && p < at[i-1] {
					t.Errorf("kill %d at %d before kill %d at %d", i, p, i-1, at[i-1])
				}
			}
		}
	}
}
