package partition

import (
	"hash/fnv"
	"slices"
	"strconv"
)

// Assign maps each of partitions partitions to one of members: the member
// with the highest rendezvous score for it among those not yet holding their
// share (ceil(partitions/len(members))). Every replica computes the same
// answer from the same member set, whatever its order; a member joining or
// leaving moves few partitions, and no member holds more than its share. It
// returns each member's partitions in ascending order; nil with no members.
func Assign(members []string, partitions int) map[string][]int {
	if len(members) == 0 || partitions <= 0 {
		return nil
	}
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	share := (partitions + len(ms) - 1) / len(ms)
	out := make(map[string][]int, len(ms))
	type cand struct {
		m     string
		score uint64
	}
	ranked := make([]cand, len(ms))
	for p := range partitions {
		for i, m := range ms {
			ranked[i] = cand{m, score(m, p)}
		}
		slices.SortFunc(ranked, func(a, b cand) int {
			switch {
			case a.score > b.score:
				return -1
			case a.score < b.score:
				return 1
			}
			return cmpString(a.m, b.m)
		})
		for _, c := range ranked {
			if len(out[c.m]) < share {
				out[c.m] = append(out[c.m], p)
				break
			}
		}
	}
	return out
}

func score(member string, p int) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member)) // a hash.Hash never fails to write
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(strconv.AppendInt(nil, int64(p), 10))
	// FNV's low bits mix poorly for short, similar inputs: finish with a
	// 64-bit mixer (splitmix64's) so scores are independent across members.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
