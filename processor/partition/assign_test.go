package partition

import (
	"fmt"
	"slices"
	"testing"
)

func TestAssign(t *testing.T) {
	tests := []struct {
		name       string
		members    []string
		partitions int
	}{
		{"one replica", []string{"a"}, 8},
		{"three replicas", []string{"a", "b", "c"}, 8},
		{"more replicas than partitions", []string{"a", "b", "c", "d", "e"}, 3},
		{"duplicates count once", []string{"b", "a", "b"}, 8},
		{"many", []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7"}, 256},
		{"one partition", []string{"x", "y"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Assign(tt.members, tt.partitions)
			distinct := slices.Compact(slices.Sorted(slices.Values(tt.members)))
			share := (tt.partitions + len(distinct) - 1) / len(distinct)
			seen := make([]int, tt.partitions)
			for m, ps := range got {
				if !slices.Contains(distinct, m) {
					t.Errorf("partitions given to non-member %q", m)
				}
				if len(ps) > share {
					t.Errorf("%s holds %d partitions, share is %d", m, len(ps), share)
				}
				if !slices.IsSorted(ps) {
					t.Errorf("%s: %v not ascending", m, ps)
				}
				for _, p := range ps {
					seen[p]++
				}
			}
			for p, n := range seen {
				if n != 1 {
					t.Errorf("partition %d assigned %d times", p, n)
				}
			}
			// Every replica computes the same answer whatever order it lists.
			rev := slices.Clone(tt.members)
			slices.Reverse(rev)
			if again := Assign(rev, tt.partitions); fmt.Sprint(again) != fmt.Sprint(got) {
				t.Errorf("order changes the assignment: %v vs %v", got, again)
			}
		})
	}
	if Assign(nil, 8) != nil || Assign([]string{"a"}, 0) != nil {
		t.Error("no members or no partitions should assign nothing")
	}
}

// A replica joining or leaving moves few partitions: the rest stay put, so
// hand-overs (drain, unpin) are few.
func TestAssignStability(t *testing.T) {
	const parts = 64
	before := Assign([]string{"a", "b", "c"}, parts)
	after := Assign([]string{"a", "b", "c", "d"}, parts)
	moved := 0
	for _, m := range []string{"a", "b", "c"} {
		for _, p := range before[m] {
			if !slices.Contains(after[m], p) {
				moved++
			}
		}
	}
	// d takes its share (16); a bounded-load rendezvous moves little more.
	if moved > parts/4+parts/8 {
		t.Errorf("a fourth replica moved %d of %d partitions", moved, parts)
	}
	if len(after["d"]) < parts/4-2 {
		t.Errorf("the new replica got %d partitions, want about %d", len(after["d"]), parts/4)
	}
	// Leaving: only the leaver's partitions move.
	left := Assign([]string{"a", "c"}, parts)
	for _, m := range []string{"a", "c"} {
		for _, p := range before[m] {
			if !slices.Contains(left[m], p) {
				t.Errorf("partition %d of %s moved when b left", p, m)
			}
		}
	}
}

func BenchmarkAssign(b *testing.B) {
	members := []string{"r1", "r2", "r3"}
	for b.Loop() {
		Assign(members, 64)
	}
}
