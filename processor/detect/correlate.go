package detect

import (
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

// Bounds of correlation state, so a flood of distinct groups or matches
// cannot exhaust memory.
const (
	defaultMaxGroups = 10_000
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
	maxGroups int
}

// corrState is one engine's open windows of one correlation.
type corrState struct {
	mu      sync.Mutex
	groups  map[string]*corrGroup
	newest  time.Time // latest event time the correlation has seen
	evicted int64
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
}

type corrHit struct {
	At      time.Time `json:"at"`
	EventID string    `json:"id"`
	Base    int       `json:"base"`
	Value   string    `json:"value,omitempty"`
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
func newCorrelation(r *Rule, loaded []*Rule, maxGroups int) (*Correlation, error) {
	sc := r.Sigma.Correlation
	if maxGroups <= 0 {
		maxGroups = defaultMaxGroups
	}
	c := &Correlation{rule: r, typ: sc.Type, timespan: sc.Timespan, threshold: sc.Condition, maxGroups: maxGroups}
	if c.threshold != nil {
		for _, op := range c.threshold.Ops {
			if op.Op == "lt" || op.Op == "lte" || op.Op == "neq" {
				// "Fewer than" can only be judged once a window closes, which
				// needs timers on event time; not evaluated yet.
				return nil, &sigma.UnsupportedError{Construct: "correlation:" + op.Op, Reason: "a condition that holds for few events needs the window to close; use gt, gte or eq"}
			}
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
// correlation fires; the group's window then starts afresh. With a store,
// a group this engine has not seen is read from it first and every change
// is written back before observe returns, so a restarted processor resumes
// open windows, and an input redelivered after a crash raises the same
// alert again rather than none or two.
func (c *Correlation) observe(ctx context.Context, st *corrState, store StateStore, b int, ev *schemas.Event) (corrFire, bool, error) {
	base := &c.bases[b]
	var key strings.Builder
	values := make([]string, 0, len(base.groupBy))
	for _, fr := range base.groupBy {
		v, ok := fr.First(ev)
		if !ok {
			return corrFire{}, false, nil // an event without the group-by fields belongs to no group
		}
		values = append(values, v)
		key.WriteString(v)
		key.WriteByte(0)
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
	if st.newest.Sub(hit.At) > c.timespan {
		return corrFire{}, false, nil // too late for any window still open
	}
	groupKey := key.String()
	g := st.groups[groupKey]
	if g == nil {
		if len(st.groups) >= c.maxGroups {
			c.evict(st)
		}
		g = &corrGroup{Values: values}
		if store != nil {
			if err := c.load(ctx, store, groupKey, g); err != nil {
				return corrFire{}, false, err
			}
		}
		st.groups[groupKey] = g
	}
	entity := "group:" + strings.Join(g.Values, "/")
	for _, f := range g.Fired {
		if slices.Contains(f.EventIDs, hit.EventID) {
			// A redelivery of an event that made the correlation fire:
			// the same alert again (same events, same id).
			return corrFire{c: c, eventIDs: f.EventIDs, entity: entity}, true, nil
		}
	}
	for _, h := range g.Hits {
		if h.EventID == hit.EventID && h.Base == hit.Base {
			return corrFire{}, false, nil // a redelivered event counts once
		}
	}
	if hit.At.After(g.Latest) {
		g.Latest = hit.At
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
	return corrFire{c: c, eventIDs: ids, entity: entity}, true, nil
}

// storeKey names a group in the state store: the rule id (made key-safe)
// and a hash of the group-by values.
func (c *Correlation) storeKey(groupKey string) string {
	sum := sha256.Sum256([]byte(groupKey))
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
	b.WriteString(hex.EncodeToString(sum[:16]))
	return b.String()
}

func (c *Correlation) load(ctx context.Context, store StateStore, groupKey string, g *corrGroup) error {
	data, err := store.Get(ctx, c.storeKey(groupKey))
	if err != nil {
		return fmt.Errorf("correlation %s: read window: %w", c.rule.ID, err)
	}
	if len(data) == 0 {
		return nil
	}
	var saved corrGroup
	if err := json.Unmarshal(data, &saved); err != nil {
		// A corrupt entry is dropped: the window starts afresh.
		return nil
	}
	for _, h := range saved.Hits {
		if h.Base < 0 || h.Base >= len(c.bases) {
			return nil
		}
	}
	*g = saved
	return nil
}

func (c *Correlation) save(ctx context.Context, store StateStore, groupKey string, g *corrGroup) error {
	data, err := json.Marshal(g)
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
		var chosen []corrHit
		for b := range c.bases {
			i := slices.IndexFunc(g.Hits, func(h corrHit) bool { return h.Base == b })
			if i < 0 {
				return nil, false
			}
			chosen = append(chosen, g.Hits[i])
		}
		return hitIDs(chosen), true
	case "temporal_ordered":
		// Greedy in event-time order: the earliest match of each base
		// after the previous one; it finds a chain whenever one exists.
		sorted := slices.Clone(g.Hits)
		slices.SortStableFunc(sorted, func(a, b corrHit) int { return a.At.Compare(b.At) })
		var chain []corrHit
		for _, h := range sorted {
			if h.Base == len(chain) {
				chain = append(chain, h)
				if len(chain) == len(c.bases) {
					return hitIDs(chain), true
				}
			}
		}
	}
	return nil, false
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

// evict drops the windows that closed before the newest event, then, if
// still full, the tenth with the oldest latest match.
func (c *Correlation) evict(st *corrState) {
	for k, g := range st.groups {
		if st.newest.Sub(g.Latest) > c.timespan {
			delete(st.groups, k)
		}
	}
	if len(st.groups) < c.maxGroups {
		return
	}
	type aged struct {
		key string
		at  time.Time
	}
	all := make([]aged, 0, len(st.groups))
	for k, g := range st.groups {
		all = append(all, aged{k, g.Latest})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.at.Compare(b.at) })
	for _, a := range all[:max(len(all)/10, 1)] {
		delete(st.groups, a.key)
		st.evicted++
	}
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
