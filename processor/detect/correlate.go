package detect

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/detect/sigma"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Bounds of correlation state, so a flood of matches cannot exhaust
// memory (the number of groups is Config.MaxCorrelationGroups).
const (
	maxHitsPerGroup  = 1_000
	maxAlertEventIDs = 64
)

// A Correlation is a loaded Sigma correlation rule: its base rules, the
// readers of its group-by fields for each base, and its open windows.
type Correlation struct {
	rule      *Rule
	typ       string
	timespan  time.Duration
	threshold *sigma.Threshold
	bases     []corrBase
	// atClose: the condition (lt, lte, eq, neq) is judged once per window,
	// when it closes, on fixed windows each starting at its first match;
	// otherwise (gt, gte, temporal) the correlation fires on the match
	// that satisfies it, on a window sliding with the newest match.
	atClose bool
}

// corrState is one engine's open windows of one correlation.
type corrState struct {
	mu        sync.Mutex
	groups    map[string]*corrGroup
	byAge     groupHeap // the same groups, oldest latest match first
	newest    time.Time // latest match time the correlation has seen (replay's watermark)
	maxGroups int
	counters  *Counters
	// restored: the windows the state store held were read back (once per
	// engine and correlation, so none is left behind by a restart).
	restored bool
	// unpurged are groups closed or evicted whose store entry could not be
	// deleted yet: retried at the next closing pass.
	unpurged []unpurged
}

// unpurged is a group that left memory with its store entry still there.
type unpurged struct {
	key    string
	latest time.Time // its newest match when it left
}

func newCorrState(maxGroups int, counters *Counters) *corrState {
	return &corrState{groups: map[string]*corrGroup{}, maxGroups: max(maxGroups, 1), counters: counters}
}

type corrBase struct {
	rule    *Rule
	groupBy []*sigma.FieldReader
	value   *sigma.FieldReader // value_count: the counted field
}

// corrGroup is one open window: the matches of one group-by key, and the
// recent firings (so a redelivered event raises the same alert again).
type corrGroup struct {
	Hits   []corrHit   `json:"hits"`
	Fired  []corrFired `json:"fired,omitempty"`
	Values []string    `json:"values"` // the group-by values, for the alert's entity
	Latest time.Time   `json:"latest"`
	// Overflow: an at-close group had more matches than it may hold, so
	// the windows it decides are not judged (counted, never guessed).
	Overflow bool `json:"overflow,omitempty"`

	key string    // in corrState.groups
	idx int       // in corrState.byAge
	due time.Time // end of its (first) window: the heap's order
}

// groupHeap orders open groups by the end of their window (container/heap):
// the root is the first to close and the first to evict.
type groupHeap []*corrGroup

func (h groupHeap) Len() int           { return len(h) }
func (h groupHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h groupHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *groupHeap) Push(x any) {
	g := x.(*corrGroup)
	g.idx = len(*h)
	*h = append(*h, g)
}
func (h *groupHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	g.idx = -1
	return g
}

type corrHit struct {
	At      time.Time `json:"at"`
	EventID string    `json:"id"`
	Base    int       `json:"base"`
	Value   string    `json:"value,omitempty"`

	enc string // its JSON once a window holding it was written (appendGroup)
}

// corrFired is one firing: the events that made it, which give its id.
type corrFired struct {
	At       time.Time `json:"at"`
	EventIDs []string  `json:"ids"`
}

// maxFiredPerGroup bounds the firings a group remembers for redeliveries.
const maxFiredPerGroup = 4

// newCorrelation resolves a correlation's references (rule names or ids)
// among the loaded detection rules and its fields in each base rule's terms.
func newCorrelation(r *Rule, loaded []*Rule) (*Correlation, error) {
	sc := r.Sigma.Correlation
	c := &Correlation{rule: r, typ: sc.Type, timespan: sc.Timespan, threshold: sc.Condition}
	if c.threshold != nil && c.threshold.DecidedAtClose() {
		if c.typ == "temporal" || c.typ == "temporal_ordered" {
			return nil, &sigma.UnsupportedError{Construct: "correlation:" + c.typ + ":condition", Reason: "lt, lte, eq or neq on the number of rules of a temporal correlation is not evaluated; use event_count or value_count"}
		}
		for _, op := range c.threshold.Ops {
			if op.Value >= maxHitsPerGroup {
				return nil, &sigma.UnsupportedError{Construct: "correlation:" + op.Op, Reason: fmt.Sprintf("a count judged at the window's close must be below %d, the matches a window holds", maxHitsPerGroup)}
			}
		}
		c.atClose = true
	}
	if c.threshold != nil && !c.atClose && (c.typ == "temporal" || c.typ == "temporal_ordered") {
		// The count is of distinct rules: one no number of them can reach
		// would load a correlation that never fires.
		possible := false
		for n := 1; n <= len(sc.Rules) && !possible; n++ {
			possible = c.threshold.Holds(int64(n))
		}
		if !possible {
			return nil, fmt.Errorf("the condition counts distinct rules, and no count of the %d referenced can satisfy it", len(sc.Rules))
		}
	}
	if len(sc.GroupBy) == 0 && (c.typ == "temporal" || c.typ == "temporal_ordered") {
		return nil, errors.New("a temporal correlation needs group-by: which events belong together")
	}
	for _, ref := range sc.Rules {
		var base *Rule
		for _, l := range loaded {
			if l.Compiled != nil && (l.Sigma.Name == ref && ref != "" || l.Sigma.ID == ref && ref != "") {
				base = l
				break
			}
		}
		if base == nil {
			return nil, fmt.Errorf("correlation refers to %q: no loaded rule has that name or id", ref)
		}
		b := corrBase{rule: base}
		for _, field := range sc.GroupBy {
			name := field
			if alias, ok := sc.Aliases[field]; ok {
				if n, ok := alias[base.Sigma.Name]; ok {
					name = n
				} else if n, ok := alias[base.Sigma.ID]; ok {
					name = n
				}
			}
			fr, err := base.Compiled.Field(name)
			if err != nil {
				return nil, fmt.Errorf("group-by %s in rule %s: %w", field, ref, err)
			}
			b.groupBy = append(b.groupBy, fr)
		}
		if c.typ == "value_count" {
			fr, err := base.Compiled.Field(sc.Condition.Field)
			if err != nil {
				return nil, fmt.Errorf("value_count field %s in rule %s: %w", sc.Condition.Field, ref, err)
			}
			b.value = fr
		}
		c.bases = append(c.bases, b)
	}
	return c, nil
}

// sameDefinition reports whether two loads of a correlation keep windows
// compatible: same type, timespan, threshold and base rules in order.
func (c *Correlation) sameDefinition(o *Correlation) bool {
	if c.typ != o.typ || c.timespan != o.timespan || len(c.bases) != len(o.bases) {
		return false
	}
	for i := range c.bases {
		if c.bases[i].rule.ID != o.bases[i].rule.ID {
			return false
		}
	}
	a, b := c.rule.Sigma.Correlation, o.rule.Sigma.Correlation
	if !slices.Equal(a.GroupBy, b.GroupBy) || (a.Condition == nil) != (b.Condition == nil) {
		return false
	}
	return a.Condition == nil || a.Condition.Field == b.Condition.Field && slices.Equal(a.Condition.Ops, b.Condition.Ops)
}

// corrFire is a correlation that fired on an event: what its alert needs.
type corrFire struct {
	c        *Correlation
	eventIDs []string
	entity   string
}

// observe records that base rule b matched ev and reports whether the
// correlation fires; the group's window then starts afresh. wm is the
// watermark (zero: replay, where the correlation's own newest match minus
// its timespan is the watermark). A match behind the watermark, or older
// than its group's window, is dropped and counted as late — unless it is a
// redelivery of an event that made the group fire. With a store, a group
// this engine has not seen is read from it first and every change is
// written back before observe returns, so a restarted processor resumes
// open windows, and an input redelivered after a crash raises the same
// alert again rather than none or two.
func (c *Correlation) observe(ctx context.Context, st *corrState, store StateStore, b int, ev *schemas.Event, wm time.Time) (corrFire, bool, error) {
	base := &c.bases[b]
	values := make([]string, 0, len(base.groupBy))
	for _, fr := range base.groupBy {
		v, ok := fr.First(ev)
		if !ok {
			return corrFire{}, false, nil // an event without the group-by fields belongs to no group
		}
		values = append(values, v)
	}
	hit := corrHit{At: ev.Timestamp, EventID: ev.Event.ID, Base: b}
	if base.value != nil {
		v, ok := base.value.First(ev)
		if !ok {
			return corrFire{}, false, nil
		}
		hit.Value = v
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	if hit.At.After(st.newest) {
		st.newest = hit.At
	}
	if wm.IsZero() {
		wm = st.newest.Add(-c.timespan)
	}
	groupKey := groupKeyOf(values)
	g := st.groups[groupKey]
	if hit.At.Before(wm) {
		if g != nil {
			if f, ok := g.firedWith(hit.EventID); ok {
				return corrFire{c: c, eventIDs: f.EventIDs, entity: g.entity()}, true, nil
			}
		}
		st.counters.LateMatches.Add(1)
		return corrFire{}, false, nil
	}
	if g == nil {
		g = &corrGroup{Values: values}
		if store != nil {
			if err := c.load(ctx, store, groupKey, g, wm); err != nil {
				return corrFire{}, false, err
			}
		}
		if err := c.add(ctx, st, store, groupKey, g); err != nil {
			return corrFire{}, false, err
		}
	}
	// A redelivered input may come back because writing its window failed
	// (the write is one of its outputs, awaited before its ack): the window
	// is written again, or the input would be acked with its match in
	// memory only, lost to a restart.
	if f, ok := g.firedWith(hit.EventID); ok {
		// A redelivery of an event that made the correlation fire:
		// the same alert again (same events, same id).
		fire := corrFire{c: c, eventIDs: f.EventIDs, entity: g.entity()}
		if store != nil {
			if err := c.save(ctx, store, groupKey, g); err != nil {
				return corrFire{}, false, err
			}
		}
		return fire, true, nil
	}
	for _, h := range g.Hits {
		if h.EventID == hit.EventID && h.Base == hit.Base {
			if store != nil {
				return corrFire{}, false, c.save(ctx, store, groupKey, g)
			}
			return corrFire{}, false, nil // a redelivered event counts once
		}
	}
	if c.atClose {
		return corrFire{}, false, c.hold(ctx, st, store, groupKey, g, hit)
	}
	if g.Latest.Sub(hit.At) > c.timespan {
		// Older than the window ending at the group's latest match.
		st.counters.LateMatches.Add(1)
		return corrFire{}, false, nil
	}
	if hit.At.After(g.Latest) {
		g.Latest = hit.At
		g.due = c.end(g)
		heap.Fix(&st.byAge, g.idx)
	}
	// Slide the window: drop matches older than the timespan before the latest.
	keep := g.Hits[:0]
	for _, h := range g.Hits {
		if g.Latest.Sub(h.At) <= c.timespan {
			keep = append(keep, h)
		}
	}
	g.Hits = append(keep, hit)
	if len(g.Hits) > maxHitsPerGroup {
		g.Hits = g.Hits[len(g.Hits)-maxHitsPerGroup:]
	}
	ids, fired := c.fires(g)
	if fired {
		g.Hits = nil
		g.Fired = append(g.Fired, corrFired{At: hit.At, EventIDs: ids})
		if len(g.Fired) > maxFiredPerGroup {
			g.Fired = g.Fired[len(g.Fired)-maxFiredPerGroup:]
		}
	}
	if store != nil {
		if err := c.save(ctx, store, groupKey, g); err != nil {
			return corrFire{}, false, err
		}
	}
	if !fired {
		return corrFire{}, false, nil
	}
	return corrFire{c: c, eventIDs: ids, entity: g.entity()}, true, nil
}

// hold adds a match to an at-close group: its matches are kept in event-time
// order, and which window each belongs to is decided only when the windows
// close (decide), so the outcome does not depend on arrival order.
func (c *Correlation) hold(ctx context.Context, st *corrState, store StateStore, groupKey string, g *corrGroup, hit corrHit) error {
	if hit.At.After(g.Latest) {
		g.Latest = hit.At
	}
	if len(g.Hits) >= maxHitsPerGroup {
		g.Overflow = true
	} else {
		i, _ := slices.BinarySearchFunc(g.Hits, hit.At, func(h corrHit, t time.Time) int {
			if h.At.After(t) {
				return 1
			}
			return -1 // equal times keep arrival order
		})
		g.Hits = slices.Insert(g.Hits, i, hit)
	}
	g.due = c.end(g)
	heap.Fix(&st.byAge, g.idx)
	if store != nil {
		return c.save(ctx, store, groupKey, g)
	}
	return nil
}

// decide judges, oldest first, every window of the at-close group g that
// ended before wm: a window starts at its first match and spans the
// timespan (both ends included); its count is judged against the
// condition and fire is called when it holds, with the window's end. The
// judged matches then leave the group, and what remains is written back.
// If fire fails, nothing is removed: the next closing pass judges the same
// windows again and fires the same alerts (same ids).
func (c *Correlation) decide(ctx context.Context, st *corrState, store StateStore, g *corrGroup, wm time.Time, fire func(corrFire, time.Time) error) error {
	if store != nil {
		if err := c.refresh(ctx, store, g); err != nil {
			return err
		}
	}
	n := 0
	for n < len(g.Hits) {
		end := g.Hits[n].At.Add(c.timespan)
		if !wm.After(end) {
			break
		}
		j := n
		for j < len(g.Hits) && !g.Hits[j].At.After(end) {
			j++
		}
		if g.Overflow {
			st.counters.CorrelationOverflow.Add(1)
		} else if c.threshold.Holds(c.count(g.Hits[n:j])) {
			if err := fire(corrFire{c: c, eventIDs: hitIDs(g.Hits[n:j]), entity: g.entity()}, end); err != nil {
				return err
			}
		}
		n = j
	}
	g.Hits = append(g.Hits[:0], g.Hits[n:]...)
	if len(g.Hits) == 0 {
		return nil // the caller forgets the group and deletes its entry
	}
	g.due = c.end(g)
	heap.Fix(&st.byAge, g.idx)
	if store != nil {
		return c.save(ctx, store, g.key, g)
	}
	return nil
}

// refresh brings g up to date with its entry in the store before it is
// judged. Replicas share the bucket and each reads every window back at its
// start, so g may be a stale copy of a window another processor (the one its
// partition belongs to) went on filling: the matches of both are judged
// together, and every processor judging the window raises the same alert
// (same id). An entry that is gone was judged (or evicted) by another
// processor: g is emptied, not judged on what it alone saw. (This engine
// writes the entry before acking each match, so its own windows always have
// one.)
func (c *Correlation) refresh(ctx context.Context, store StateStore, g *corrGroup) error {
	data, err := store.Get(ctx, c.storeKey(g.key))
	if err != nil {
		return fmt.Errorf("correlation %s: read window: %w", c.rule.ID, err)
	}
	saved, ok := c.decode(data)
	if !ok {
		g.Hits = nil
		return nil
	}
	for _, h := range saved.Hits {
		if slices.ContainsFunc(g.Hits, func(o corrHit) bool { return o.EventID == h.EventID && o.Base == h.Base }) {
			continue
		}
		if len(g.Hits) >= maxHitsPerGroup {
			g.Overflow = true
			break
		}
		i, _ := slices.BinarySearchFunc(g.Hits, h.At, func(o corrHit, t time.Time) int {
			if o.At.After(t) {
				return 1
			}
			return -1
		})
		g.Hits = slices.Insert(g.Hits, i, h)
	}
	g.Overflow = g.Overflow || saved.Overflow
	if saved.Latest.After(g.Latest) {
		g.Latest = saved.Latest
	}
	return nil
}

// count is what the condition of an at-close correlation compares: the
// matches of a window, or the distinct values of condition.field among them.
func (c *Correlation) count(hits []corrHit) int64 {
	if c.typ != "value_count" {
		return int64(len(hits))
	}
	var distinct []string
	for _, h := range hits {
		if !slices.Contains(distinct, h.Value) {
			distinct = append(distinct, h.Value)
		}
	}
	return int64(len(distinct))
}

// groupKeyOf is a group's key in memory: its group-by values, each ended
// by a NUL (which no value read from an event holds).
func groupKeyOf(values []string) string {
	var b strings.Builder
	for _, v := range values {
		b.WriteString(v)
		b.WriteByte(0)
	}
	return b.String()
}

func (g *corrGroup) entity() string { return "group:" + strings.Join(g.Values, "/") }

func (g *corrGroup) firedWith(eventID string) (corrFired, bool) {
	for _, f := range g.Fired {
		if slices.Contains(f.EventIDs, eventID) {
			return f, true
		}
	}
	return corrFired{}, false
}

// add makes g an open group under groupKey, first forgetting the group
// with the oldest match if the correlation is at its bound.
func (c *Correlation) add(ctx context.Context, st *corrState, store StateStore, groupKey string, g *corrGroup) error {
	for len(st.groups) >= st.maxGroups && st.byAge.Len() > 0 {
		old := heap.Pop(&st.byAge).(*corrGroup)
		delete(st.groups, old.key)
		st.counters.CorrelationEvicted.Add(1)
		if err := c.purge(ctx, st, store, old.key, old.Latest); err != nil {
			return err
		}
	}
	g.key = groupKey
	g.due = c.end(g)
	st.groups[groupKey] = g
	heap.Push(&st.byAge, g)
	return nil
}

// close forgets the groups whose window ended before the watermark — no
// match that is not late can join them — and deletes them from the store;
// an at-close correlation first judges those windows (decide), calling fire
// for each that holds. Entries whose deletion failed earlier are retried
// first.
func (c *Correlation) close(ctx context.Context, st *corrState, store StateStore, wm time.Time, fire func(corrFire, time.Time) error) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if store != nil && len(st.unpurged) > 0 {
		retry := st.unpurged
		st.unpurged = nil
		for i, u := range retry {
			if _, open := st.groups[u.key]; open {
				continue // the group came back since: its entry is live again
			}
			if err := c.purge(ctx, st, store, u.key, u.latest); err != nil {
				st.unpurged = append(st.unpurged, retry[i+1:]...)
				return err
			}
		}
	}
	for st.byAge.Len() > 0 {
		g := st.byAge[0]
		if !c.closedAt(g, wm) {
			return nil
		}
		if c.atClose {
			if err := c.decide(ctx, st, store, g, wm, fire); err != nil {
				return err
			}
			if len(g.Hits) > 0 {
				continue // a later window of the group is still open
			}
		}
		heap.Pop(&st.byAge)
		delete(st.groups, g.key)
		st.counters.CorrelationClosed.Add(1)
		if err := c.purge(ctx, st, store, g.key, g.Latest); err != nil {
			return err
		}
	}
	return nil
}

// purge deletes a group that left memory (its newest match at latest) from
// the store, unless the stored window has moved on since: replicas share the
// bucket, and another processor — the one the group's partition belongs to,
// whose copy this one read back at its start — may hold the window open
// further. A failure is remembered for the next closing pass, so no entry is
// left behind.
func (c *Correlation) purge(ctx context.Context, st *corrState, store StateStore, groupKey string, latest time.Time) error {
	if store == nil {
		return nil
	}
	key := c.storeKey(groupKey)
	data, err := store.Get(ctx, key)
	if err == nil && len(data) == 0 {
		return nil // nothing stored
	}
	if err == nil {
		if saved, ok := c.decode(data); ok && saved.Latest.After(latest) {
			return nil // another processor's window, still moving
		}
		err = store.Delete(ctx, key)
	}
	if err != nil {
		st.unpurged = append(st.unpurged, unpurged{groupKey, latest})
		return fmt.Errorf("correlation %s: delete closed window: %w", c.rule.ID, err)
	}
	return nil
}

// restore reads back every window the store holds for c (written before a
// restart, or by the processor a partition was handed over from), so that
// each is closed and deleted in time even if no match of its group comes
// again. Windows already closed at wm are deleted at once.
func (c *Correlation) restore(ctx context.Context, st *corrState, store StateStore, wm time.Time) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.restored {
		return nil
	}
	keys, err := store.Keys(ctx, c.storePrefix())
	if err != nil {
		return fmt.Errorf("correlation %s: list windows: %w", c.rule.ID, err)
	}
	for _, k := range keys {
		data, err := store.Get(ctx, k)
		if err != nil {
			return fmt.Errorf("correlation %s: read window: %w", c.rule.ID, err)
		}
		g, ok := c.decode(data)
		groupKey := ""
		if ok {
			groupKey = groupKeyOf(g.Values)
		}
		if !ok || c.storeKey(groupKey) != k || c.closedAt(g, wm) && !c.atClose {
			// Unreadable, written under another definition, or closed
			// while no processor ran: nothing to resume. (An at-close
			// window that closed meanwhile is resumed: it is yet to be
			// judged, at the next closing pass.)
			if err := store.Delete(ctx, k); err != nil {
				return fmt.Errorf("correlation %s: delete closed window: %w", c.rule.ID, err)
			}
			st.counters.CorrelationClosed.Add(1)
			continue
		}
		if _, open := st.groups[groupKey]; open {
			continue
		}
		if err := c.add(ctx, st, store, groupKey, g); err != nil {
			return err
		}
	}
	st.restored = true
	return nil
}

// closedAt reports whether g's (first) window ended before the watermark.
func (c *Correlation) closedAt(g *corrGroup, wm time.Time) bool {
	return !wm.IsZero() && wm.After(c.end(g))
}

// end is when g's window ends: the timespan after its newest match, or for
// an at-close correlation after the first match of its oldest window.
func (c *Correlation) end(g *corrGroup) time.Time {
	if c.atClose && len(g.Hits) > 0 {
		return g.Hits[0].At.Add(c.timespan)
	}
	return g.Latest.Add(c.timespan)
}

// storeKey names a group in the state store: the rule id (made key-safe)
// and a hash of the group-by values.
func (c *Correlation) storeKey(groupKey string) string {
	sum := sha256.Sum256([]byte(groupKey))
	return c.storePrefix() + hex.EncodeToString(sum[:16])
}

// storePrefix is what every store key of c starts with.
func (c *Correlation) storePrefix() string {
	var b strings.Builder
	b.WriteString("correlation.")
	for _, r := range c.rule.ID {
		if r < 0x80 && (r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('.')
	return b.String()
}

// load fills g from the store's entry for groupKey, unless the entry is
// unreadable or its window closed before wm (the window starts afresh).
func (c *Correlation) load(ctx context.Context, store StateStore, groupKey string, g *corrGroup, wm time.Time) error {
	data, err := store.Get(ctx, c.storeKey(groupKey))
	if err != nil {
		return fmt.Errorf("correlation %s: read window: %w", c.rule.ID, err)
	}
	if saved, ok := c.decode(data); ok && (c.atClose || !c.closedAt(saved, wm)) {
		*g = *saved // an at-close window is kept even if closed: it is yet to be judged
	}
	return nil
}

// decode reads a stored window; false when there is none or it does not
// fit c (a corrupt entry, or one of a different definition).
func (c *Correlation) decode(data []byte) (*corrGroup, bool) {
	if len(data) == 0 {
		return nil, false
	}
	var saved corrGroup
	if err := json.Unmarshal(data, &saved); err != nil || len(saved.Values) != len(c.bases[0].groupBy) {
		return nil, false
	}
	for _, h := range saved.Hits {
		if h.Base < 0 || h.Base >= len(c.bases) {
			return nil, false
		}
	}
	if c.atClose {
		// hold keeps them in event-time order; an entry written under a
		// sliding definition of the same rule may not be.
		slices.SortStableFunc(saved.Hits, func(a, b corrHit) int { return a.At.Compare(b.At) })
	}
	return &saved, true
}

func (c *Correlation) save(ctx context.Context, store StateStore, groupKey string, g *corrGroup) error {
	data, err := appendGroup(make([]byte, 0, 128+96*len(g.Hits)), g)
	if err != nil {
		return fmt.Errorf("correlation %s: encode window: %w", c.rule.ID, err)
	}
	if err := store.Put(ctx, c.storeKey(groupKey), data); err != nil {
		return fmt.Errorf("correlation %s: write window: %w", c.rule.ID, err)
	}
	return nil
}

// fires evaluates the group's window and returns the contributing events.
func (c *Correlation) fires(g *corrGroup) ([]string, bool) {
	switch c.typ {
	case "event_count":
		if !c.threshold.Holds(int64(len(g.Hits))) {
			return nil, false
		}
		return hitIDs(g.Hits), true
	case "value_count":
		var distinct []string
		for _, h := range g.Hits {
			if !slices.Contains(distinct, h.Value) {
				distinct = append(distinct, h.Value)
			}
		}
		if !c.threshold.Holds(int64(len(distinct))) {
			return nil, false
		}
		return hitIDs(g.Hits), true
	case "temporal":
		// Every referenced rule, or with a condition (gt, gte) enough of
		// them: the count of distinct rules that matched.
		var chosen []corrHit
		for b := range c.bases {
			i := slices.IndexFunc(g.Hits, func(h corrHit) bool { return h.Base == b })
			if i < 0 {
				if c.threshold == nil {
					return nil, false
				}
				continue
			}
			chosen = append(chosen, g.Hits[i])
		}
		if c.threshold != nil && !c.threshold.Holds(int64(len(chosen))) {
			return nil, false
		}
		return hitIDs(chosen), true
	case "temporal_ordered":
		if c.threshold != nil {
			chain := longestChain(g.Hits, len(c.bases))
			if len(chain) == 0 || !c.threshold.Holds(int64(len(chain))) {
				return nil, false
			}
			return hitIDs(chain), true
		}
		// Greedy in event-time order (arrival order among equal times):
		// the earliest match of each base after the previous one; it
		// finds a chain whenever one exists. Scanned per base rather than
		// sorted: a window may hold maxHitsPerGroup matches, and matches
		// need not arrive in event-time order.
		chain := make([]corrHit, 0, len(c.bases))
		prev := -1
		for b := range c.bases {
			next := -1
			for i := range g.Hits {
				h := &g.Hits[i]
				if h.Base != b || prev >= 0 && !after(g.Hits, i, prev) {
					continue
				}
				if next < 0 || after(g.Hits, next, i) {
					next = i
				}
			}
			if next < 0 {
				return nil, false
			}
			chain = append(chain, g.Hits[next])
			prev = next
		}
		return hitIDs(chain), true
	}
	return nil, false
}

// longestChain returns the longest chain of matches whose rules come in the
// correlation's order (a subsequence of its rules: the count a gt/gte
// condition on temporal_ordered is judged on), each after the previous in
// event-time order, equal times in arrival order. Of chains of equal
// length it keeps the one ending first. O(matches × rules), with one sort
// of the window: only correlations with a condition pay for it.
func longestChain(hits []corrHit, bases int) []corrHit {
	order := make([]int, len(hits))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return hits[a].At.Compare(hits[b].At) })
	length, prev := make([]int, len(hits)), make([]int, len(hits))
	bestEnd := make([]int, bases) // per rule, the match ending the longest chain seen so far
	for b := range bestEnd {
		bestEnd[b] = -1
	}
	best := -1
	for _, i := range order {
		b := hits[i].Base
		if b < 0 || b >= bases {
			continue
		}
		p := -1
		for r := range b {
			if e := bestEnd[r]; e >= 0 && (p < 0 || length[e] > length[p]) {
				p = e
			}
		}
		length[i], prev[i] = 1, p
		if p >= 0 {
			length[i] = length[p] + 1
		}
		if bestEnd[b] < 0 || length[i] > length[bestEnd[b]] {
			bestEnd[b] = i
		}
		if best < 0 || length[i] > length[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	chain := make([]corrHit, length[best])
	for k, i := len(chain)-1, best; i >= 0; k, i = k-1, prev[i] {
		chain[k] = hits[i]
	}
	return chain
}

// after reports whether hits[i] comes after hits[j] in event-time order,
// equal times in arrival order (a stable sort's order).
func after(hits []corrHit, i, j int) bool {
	if c := hits[i].At.Compare(hits[j].At); c != 0 {
		return c > 0
	}
	return i > j
}

func hitIDs(hits []corrHit) []string {
	ids := make([]string, 0, min(len(hits), maxAlertEventIDs))
	for _, h := range hits {
		if len(ids) == maxAlertEventIDs {
			break
		}
		ids = append(ids, h.EventID)
	}
	return ids
}

// correlationAlertID derives a correlation alert's id from its rule and the
// events that made it fire: the same events always give the same id.
func correlationAlertID(ruleID string, eventIDs []string) string {
	h := sha256.New()
	for _, id := range eventIDs {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return AlertID("corr-"+hex.EncodeToString(h.Sum(nil)[:16]), ruleID)
}
