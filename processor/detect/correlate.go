package detect

import (
	"crypto/sha256"
	"encoding/hex"
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

// corrGroup is one open window: the matches of one group-by key.
type corrGroup struct {
	hits   []corrHit
	values []string // the group-by values, for the alert's entity
	latest time.Time
}

type corrHit struct {
	at      time.Time
	eventID string
	base    int
	value   string
}

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

// corrFire is a correlation that fired on an event: what its alert needs.
type corrFire struct {
	c        *Correlation
	eventIDs []string
	entity   string
}

// observe records that base rule b matched ev and reports whether the
// correlation fires; the window of the group is then reset.
func (c *Correlation) observe(st *corrState, b int, ev *schemas.Event) (corrFire, bool) {
	base := &c.bases[b]
	var key strings.Builder
	values := make([]string, 0, len(base.groupBy))
	for _, fr := range base.groupBy {
		v, ok := fr.First(ev)
		if !ok {
			return corrFire{}, false // an event without the group-by fields belongs to no group
		}
		values = append(values, v)
		key.WriteString(v)
		key.WriteByte(0)
	}
	hit := corrHit{at: ev.Timestamp, eventID: ev.Event.ID, base: b}
	if base.value != nil {
		v, ok := base.value.First(ev)
		if !ok {
			return corrFire{}, false
		}
		hit.value = v
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	if hit.at.After(st.newest) {
		st.newest = hit.at
	}
	if st.newest.Sub(hit.at) > c.timespan {
		return corrFire{}, false // too late for any window still open
	}
	g := st.groups[key.String()]
	if g == nil {
		if len(st.groups) >= c.maxGroups {
			c.evict(st)
		}
		g = &corrGroup{values: values}
		st.groups[key.String()] = g
	}
	for _, h := range g.hits {
		if h.eventID == hit.eventID && h.base == hit.base {
			return corrFire{}, false // a redelivered event counts once
		}
	}
	if hit.at.After(g.latest) {
		g.latest = hit.at
	}
	// Slide the window: drop matches older than the timespan before the latest.
	keep := g.hits[:0]
	for _, h := range g.hits {
		if g.latest.Sub(h.at) <= c.timespan {
			keep = append(keep, h)
		}
	}
	g.hits = append(keep, hit)
	if len(g.hits) > maxHitsPerGroup {
		g.hits = g.hits[len(g.hits)-maxHitsPerGroup:]
	}
	ids, ok := c.fires(g)
	if !ok {
		return corrFire{}, false
	}
	delete(st.groups, key.String())
	return corrFire{c: c, eventIDs: ids, entity: "group:" + strings.Join(g.values, "/")}, true
}

// fires evaluates the group's window and returns the contributing events.
func (c *Correlation) fires(g *corrGroup) ([]string, bool) {
	switch c.typ {
	case "event_count":
		if !c.threshold.Holds(int64(len(g.hits))) {
			return nil, false
		}
		return hitIDs(g.hits), true
	case "value_count":
		var distinct []string
		for _, h := range g.hits {
			if !slices.Contains(distinct, h.value) {
				distinct = append(distinct, h.value)
			}
		}
		if !c.threshold.Holds(int64(len(distinct))) {
			return nil, false
		}
		return hitIDs(g.hits), true
	case "temporal":
		var chosen []corrHit
		for b := range c.bases {
			i := slices.IndexFunc(g.hits, func(h corrHit) bool { return h.base == b })
			if i < 0 {
				return nil, false
			}
			chosen = append(chosen, g.hits[i])
		}
		return hitIDs(chosen), true
	case "temporal_ordered":
		// Greedy in event-time order: the earliest match of each base
		// after the previous one; it finds a chain whenever one exists.
		sorted := slices.Clone(g.hits)
		slices.SortStableFunc(sorted, func(a, b corrHit) int { return a.at.Compare(b.at) })
		var chain []corrHit
		for _, h := range sorted {
			if h.base == len(chain) {
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
		ids = append(ids, h.eventID)
	}
	return ids
}

// evict drops the windows that closed before the newest event, then, if
// still full, the tenth with the oldest latest match.
func (c *Correlation) evict(st *corrState) {
	for k, g := range st.groups {
		if st.newest.Sub(g.latest) > c.timespan {
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
		all = append(all, aged{k, g.latest})
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
