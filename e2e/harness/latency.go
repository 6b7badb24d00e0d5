package harness

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Latencies pairs the moment each id was sent with the moment it was seen
// somewhere downstream, and reports percentiles of the difference. An id
// seen more than once counts at its first sighting; an id seen but never
// sent (another phase's) is ignored and counted.
type Latencies struct {
	mu      sync.Mutex
	sent    map[string]time.Time
	seen    map[string]bool
	samples []time.Duration
	strays  int
}

// NewLatencies returns an empty recorder.
func NewLatencies() *Latencies {
	return &Latencies{sent: map[string]time.Time{}, seen: map[string]bool{}}
}

// Sent stamps id's send time.
func (l *Latencies) Sent(id string, at time.Time) {
	l.mu.Lock()
	l.sent[id] = at
	l.mu.Unlock()
}

// Seen records id's arrival; it reports whether id was sent and not seen
// before.
func (l *Latencies) Seen(id string, at time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t0, ok := l.sent[id]
	if !ok {
		l.strays++
		return false
	}
	if l.seen[id] {
		return false
	}
	l.seen[id] = true
	l.samples = append(l.samples, at.Sub(t0))
	return true
}

// Pending returns the ids sent and not yet seen, at most max of them.
func (l *Latencies) Pending(max int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id := range l.sent {
		if !l.seen[id] {
			out = append(out, id)
			if len(out) == max {
				break
			}
		}
	}
	return out
}

// Summary is the percentiles of what was seen.
type Summary struct {
	Sent, Seen, Strays int
	P50, P99, Max      time.Duration
}

// Summary computes the percentiles (nearest rank) of the samples so far.
func (l *Latencies) Summary() Summary {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	out := Summary{Sent: len(l.sent), Seen: len(s), Strays: l.strays}
	l.mu.Unlock()
	if len(s) == 0 {
		return out
	}
	slices.Sort(s)
	out.P50, out.P99, out.Max = Percentile(s, 50), Percentile(s, 99), s[len(s)-1]
	return out
}

// Percentile is the nearest-rank p-th percentile of sorted (not empty).
func Percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func (s Summary) String() string {
	if s.Seen == 0 {
		return fmt.Sprintf("none of %d seen", s.Sent)
	}
	return fmt.Sprintf("p50 %s p99 %s max %s (%d of %d seen)", s.P50.Round(time.Millisecond), s.P99.Round(time.Millisecond), s.Max.Round(time.Millisecond), s.Seen, s.Sent)
}
