package file

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// seqSet is a set of stream sequences kept as sorted, disjoint, non-adjacent
// ranges. A sink that writes in delivery order extends the last range, so
// the set stays a handful of ranges however many records it covers; gaps
// come only from records that were dead-lettered, still retrying, or never
// delivered to this consumer.
type seqSet struct {
	r []seqRange
}

type seqRange struct{ lo, hi uint64 }

func (s *seqSet) has(v uint64) bool {
	n := len(s.r)
	if n == 0 {
		return false
	}
	if last := s.r[n-1]; v >= last.lo {
		return v <= last.hi
	}
	i := sort.Search(n, func(i int) bool { return s.r[i].hi >= v })
	return i < n && s.r[i].lo <= v
}

func (s *seqSet) add(v uint64) {
	n := len(s.r)
	if n == 0 || v > s.r[n-1].hi+1 {
		s.r = append(s.r, seqRange{v, v})
		return
	}
	if v == s.r[n-1].hi+1 {
		s.r[n-1].hi = v
		return
	}
	s.addRange(seqRange{v, v})
}

// addRange inserts r, merging it with the ranges it overlaps or touches.
func (s *seqSet) addRange(r seqRange) {
	// First range that ends at or after r.lo-1 (could touch r).
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].hi+1 >= r.lo })
	j := i
	for j < len(s.r) && s.r[j].lo <= r.hi+1 {
		r.lo = min(r.lo, s.r[j].lo)
		r.hi = max(r.hi, s.r[j].hi)
		j++
	}
	s.r = append(s.r[:i], append([]seqRange{r}, s.r[j:]...)...)
}

func (s *seqSet) union(o *seqSet) {
	for _, r := range o.r {
		if n := len(s.r); n == 0 || r.lo > s.r[n-1].hi+1 {
			s.r = append(s.r, r)
			continue
		}
		s.addRange(r)
	}
}

// pruneThrough forgets every sequence <= floor.
func (s *seqSet) pruneThrough(floor uint64) {
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].hi > floor })
	s.r = s.r[i:]
	if len(s.r) > 0 && s.r[0].lo <= floor {
		s.r[0].lo = floor + 1
	}
}

// capRanges forgets the oldest ranges beyond max. Forgetting can only cause a
// duplicate (a forgotten record redelivered is written again), never a loss.
func (s *seqSet) capRanges(max int) {
	if len(s.r) > max {
		s.r = append(s.r[:0], s.r[len(s.r)-max:]...)
	}
}

func (s *seqSet) reset() { s.r = s.r[:0] }

// appendText appends the ranges as "lo-hi,lo-hi" ("-" for an empty set).
func (s *seqSet) appendText(b []byte) []byte {
	if len(s.r) == 0 {
		return append(b, '-')
	}
	for i, r := range s.r {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, r.lo, 10)
		b = append(b, '-')
		b = strconv.AppendUint(b, r.hi, 10)
	}
	return b
}

// parseSeqSet parses what appendText wrote.
func parseSeqSet(text string) (seqSet, error) {
	var s seqSet
	if text == "-" {
		return s, nil
	}
	for part := range strings.SplitSeq(text, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		if !ok {
			return s, fmt.Errorf("range %q: want lo-hi", part)
		}
		l, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			return s, fmt.Errorf("range %q: %w", part, err)
		}
		h, err := strconv.ParseUint(hi, 10, 64)
		if err != nil {
			return s, fmt.Errorf("range %q: %w", part, err)
		}
		if h < l {
			return s, fmt.Errorf("range %q: end before start", part)
		}
		s.addRange(seqRange{l, h})
	}
	return s, nil
}
