package detect

import (
	"sync"
	"time"
)

// idleSourceAfter is how long (processor clock) a source may send nothing
// before it stops holding the watermark back: a source with no traffic must
// not keep every window open forever.
const idleSourceAfter = time.Minute

// maxWatermarkSources bounds the sources tracked; sources are a fixed,
// small set (one per raw stream), so this only guards against misuse.
const maxWatermarkSources = 256

// watermark is a processor's event-time progress: per source, the newest
// event time seen; the watermark is the oldest of those among the sources
// heard from within idleSourceAfter, minus the allowed lateness. Taking the
// oldest source keeps a source that lags (a backlog after a restart, a
// slower collector) from making the other's events late; it never goes
// back. Event times ahead of the processor's clock count as the clock's
// time, so one event stamped in the future cannot close every window.
type watermark struct {
	lateness time.Duration
	now      func() time.Time

	mu      sync.Mutex
	sources map[string]*sourceMark
	started time.Time // processor clock at the first event
	current time.Time // zero until the warm-up is over
}

type sourceMark struct {
	newest   time.Time // newest event time of the source
	lastSeen time.Time // processor clock at its latest event
}

func newWatermark(lateness time.Duration, now func() time.Time) *watermark {
	return &watermark{lateness: lateness, now: now, sources: map[string]*sourceMark{}}
}

// observe records an event of source at t and returns the watermark after
// it and whether t is behind it (late). An event without a time moves
// nothing and is not late.
func (w *watermark) observe(source string, t time.Time) (time.Time, bool) {
	if t.IsZero() {
		return w.get(), false
	}
	now := w.now()
	if t.After(now) {
		t = now
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.sources[source]
	if m == nil {
		if len(w.sources) >= maxWatermarkSources {
			source = "" // fold the excess into one anonymous source
			m = w.sources[source]
		}
		if m == nil {
			m = &sourceMark{newest: t}
			w.sources[source] = m
		}
	}
	m.lastSeen = now
	if t.After(m.newest) {
		m.newest = t
	}
	if w.started.IsZero() {
		w.started = now
	}
	if now.Sub(w.started) < idleSourceAfter {
		return time.Time{}, false
	}
	var oldest time.Time
	for _, s := range w.sources {
		if now.Sub(s.lastSeen) > idleSourceAfter {
			continue
		}
		if oldest.IsZero() || s.newest.Before(oldest) {
			oldest = s.newest
		}
	}
	if wm := oldest.Add(-w.lateness); wm.After(w.current) {
		w.current = wm
	}
	return w.current, t.Before(w.current)
}

// get returns the watermark (zero until the warm-up is over).
func (w *watermark) get() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}
