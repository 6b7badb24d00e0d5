package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/processor/detect/sigma"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// OCSF Detection Finding: the class every alert belongs to.
const (
	ocsfDetectionFinding = 2004
	ocsfFindings         = 2
	ocsfActivityCreate   = 1
)

// Engine runs a rule set on events and raises alerts. One Engine serves
// every goroutine of a processor: matching shares nothing, and the
// suppression table is behind a mutex touched only on matches.
type Engine struct {
	// active is the rule set and its correlation windows, swapped whole by
	// a reload while Process keeps reading the set it started with.
	active atomic.Pointer[ruleState]
	window time.Duration
	max    int
	now    func() time.Time

	// wm is the processor's event-time progress; replay (set by Lines and
	// MergeLines) turns it off: a file is replayed on event time alone.
	wm        *watermark
	replay    atomic.Bool
	maxGroups int
	nextClose atomic.Int64 // watermark (unix ns) at which windows are next closed
	// replayNewest is the newest event time (unix ns) a replay has seen:
	// a file's clock, which closes the windows of at-close correlations.
	replayNewest atomic.Int64

	// recent are the latest at-close alerts with the event whose processing
	// raised them, raised again if that event comes again (see reraise).
	recentMu  sync.Mutex
	recent    []atCloseFiring
	recentBy  map[string]int // entries of recent per carrier: the per-event check is a lookup
	hasRecent atomic.Bool

	mu       sync.Mutex
	supp     map[string]*suppression
	newest   time.Time // latest event time seen by the suppression table
	counters Counters
	store    StateStore // nil: correlation windows live in memory only
}

// ruleState is a rule set with its correlations' windows, one per
// correlation of rules, in the same order.
type ruleState struct {
	rules    *Rules
	corr     []*corrState
	restored atomic.Bool // every correlation's stored windows were read back
}

// Counters are the engine's running totals, for metrics.
type Counters struct {
	Matches    atomic.Int64 // rule matches
	Alerts     atomic.Int64 // alerts raised
	Suppressed atomic.Int64 // matches suppressed into an earlier alert
	Evicted    atomic.Int64 // suppression windows forgotten to stay within bounds
	Correlated atomic.Int64 // correlation alerts raised (also counted in Alerts)

	LateEvents         atomic.Int64 // events behind the watermark
	LateMatches        atomic.Int64 // correlation matches dropped as late
	CorrelationClosed  atomic.Int64 // windows closed by the watermark (state deleted)
	CorrelationEvicted atomic.Int64 // open windows forgotten to stay within bounds
	// CorrelationOverflow: at-close windows not judged because their group
	// held more matches than it may.
	CorrelationOverflow atomic.Int64
}

type suppression struct {
	at      time.Time // event time of the alert that opened the window
	eventID string    // what raised it (event id, or correlation alert id): its redelivery re-raises it
	count   int64     // matches suppressed since
}

// An Option changes what NewEngine builds.
type Option func(*Engine)

// WithClock sets the clock of the alerts' event.ingested (default time.Now).
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// NewEngine builds an engine over rules with cfg's suppression, lateness
// and correlation settings.
func NewEngine(rules *Rules, cfg Config, opts ...Option) *Engine {
	e := &Engine{
		window:    cfg.SuppressionWindow,
		max:       max(cfg.MaxSuppressionEntries, 1),
		now:       time.Now,
		supp:      map[string]*suppression{},
		maxGroups: cfg.MaxCorrelationGroups,
	}
	if e.maxGroups <= 0 {
		e.maxGroups = NewDefaultConfig().MaxCorrelationGroups
	}
	for _, o := range opts {
		o(e)
	}
	e.wm = newWatermark(cfg.AllowedLateness, e.now)
	e.active.Store(e.newRuleState(rules, nil))
	return e
}

// CorrelationEvictions is how many open correlation windows were forgotten
// to stay within bounds.
func (e *Engine) CorrelationEvictions() int64 { return e.counters.CorrelationEvicted.Load() }

// OpenCorrelationWindows is how many correlation windows are open.
func (e *Engine) OpenCorrelationWindows() int {
	n := 0
	for _, st := range e.active.Load().corr {
		st.mu.Lock()
		n += len(st.groups)
		st.mu.Unlock()
	}
	return n
}

// Watermark is the event time behind which events are late (zero before
// the first event, and when replaying files).
func (e *Engine) Watermark() time.Time {
	if e.replay.Load() {
		return time.Time{}
	}
	return e.wm.get()
}

// Counters returns the running totals.
func (e *Engine) Counters() *Counters { return &e.counters }

// Rules returns the engine's rule set.
func (e *Engine) Rules() *Rules { return e.active.Load().rules }

// Swap replaces the rule set: events processed from now on see the new
// rules. The suppression table is kept, and so is the open window of every
// correlation whose rule id and definition are unchanged.
func (e *Engine) Swap(rules *Rules) {
	e.active.Store(e.newRuleState(rules, e.active.Load()))
}

func (e *Engine) newRuleState(rules *Rules, prev *ruleState) *ruleState {
	st := &ruleState{rules: rules}
	for _, c := range rules.correlations {
		var kept *corrState
		if prev != nil {
			for i, old := range prev.rules.correlations {
				if old.rule.ID == c.rule.ID && old.sameDefinition(c) {
					kept = prev.corr[i]
					break
				}
			}
		}
		if kept == nil {
			kept = newCorrState(e.maxGroups, &e.counters)
		}
		st.corr = append(st.corr, kept)
	}
	return st
}

// maxMatchesPerEvent bounds the alerts one event can raise.
const maxMatchesPerEvent = 64

// closeStep is how far the watermark moves between two passes closing
// windows: a closed window lingers at most that long, and the pass, which
// locks every correlation, runs at most once per second of event time.
const closeStep = time.Second

// Process runs every rule that can match ev and calls emit with each alert
// raised, in rule order. The alert is valid only during the call (it shares
// slices with ev): encode it there. Process returns the first error of emit,
// or of the state store (the input should then be retried). ctx bounds the
// state store's operations.
//
// Each event advances the watermark; windows it closes are forgotten and
// deleted from the state store, and the first call reads back the windows
// the store holds.
func (e *Engine) Process(ctx context.Context, ev *schemas.Event, emit func(a *schemas.Alert) error) error {
	active := e.active.Load()
	var wm time.Time
	if !e.replay.Load() {
		var late bool
		wm, late = e.wm.observe(ev.Crowsnest.Source, ev.Timestamp)
		if late {
			e.counters.LateEvents.Add(1)
		}
		if e.hasRecent.Load() { // before maintain, which may add this event's own
			if err := e.reraise(ev.Event.ID, emit); err != nil {
				return err
			}
		}
		if err := e.maintain(ctx, active, wm, ev.Event.ID, emit); err != nil {
			return err
		}
	} else if err := e.replayClose(ctx, active, ev.Timestamp, emit); err != nil {
		return err
	}
	var buf [8]*Rule
	matched := buf[:0]
	active.rules.set.Match(ev, func(c *sigma.Compiled) {
		if len(matched) < maxMatchesPerEvent {
			matched = append(matched, active.rules.byC[c])
		}
	})
	if len(matched) == 0 {
		return nil
	}
	e.counters.Matches.Add(int64(len(matched)))
	var a schemas.Alert
	for _, r := range matched {
		if r.Standalone {
			entity := Entity(ev)
			if raise, suppressed := e.suppress(r, entity, ev.Event.ID, ev.Timestamp); raise {
				e.build(&a, r, ev, entity, suppressed)
				e.counters.Alerts.Add(1)
				if err := emit(&a); err != nil {
					return err
				}
			}
		}
		for _, ref := range r.corrRefs {
			c := active.rules.correlations[ref.corr]
			fire, ok, err := c.observe(ctx, active.corr[ref.corr], e.store, ref.base, ev, wm)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if _, err := e.raise(&a, fire, ev, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// raise emits the alert of a correlation that fired, unless suppressed
// (raised false). ev is the event whose match made it fire: the alert copies
// its fields.
func (e *Engine) raise(a *schemas.Alert, fire corrFire, ev *schemas.Event, emit func(a *schemas.Alert) error) (raised bool, err error) {
	c := fire.c
	id := correlationAlertID(c.rule.ID, fire.eventIDs)
	raise, suppressed := e.suppress(c.rule, fire.entity, id, ev.Timestamp)
	if !raise {
		return false, nil
	}
	e.build(a, c.rule, ev, fire.entity, suppressed)
	a.Event.ID = id
	a.Crowsnest.Alert.EventIDs = fire.eventIDs
	a.Crowsnest.Alert.Correlation = c.typ
	e.counters.Alerts.Add(1)
	e.counters.Correlated.Add(1)
	return true, emit(a)
}

// raiseAtClose returns the fire function of closing passes: the alert of an
// at-close window that holds is dated at the window's end and copies no
// event's fields (no single event made it fire; the event that moved the
// watermark is unrelated). carrier is the id of the event being processed
// (empty in a replay): a raised alert is remembered with it (see reraise).
func (e *Engine) raiseAtClose(emit func(a *schemas.Alert) error, carrier string) func(corrFire, time.Time) error {
	return func(fire corrFire, end time.Time) error {
		var a schemas.Alert
		ev := schemas.Event{Timestamp: end}
		ev.Crowsnest.SchemaVersion = schemas.SchemaVersion
		raised, err := e.raise(&a, fire, &ev, emit)
		if err != nil {
			return err
		}
		if raised && carrier != "" {
			e.recentMu.Lock()
			if e.recentBy == nil {
				e.recentBy = map[string]int{}
			}
			e.recent = append(e.recent, atCloseFiring{carrier: carrier, fire: fire, end: end})
			e.recentBy[carrier]++
			if len(e.recent) > maxRecentAtClose {
				old := e.recent[0].carrier
				if e.recentBy[old]--; e.recentBy[old] == 0 {
					delete(e.recentBy, old)
				}
				e.recent = slices.Delete(e.recent, 0, 1)
			}
			e.hasRecent.Store(true)
			e.recentMu.Unlock()
		}
		return nil
	}
}

// atCloseFiring is an at-close alert and the event whose processing raised
// it (the one that moved the watermark past the window's end).
type atCloseFiring struct {
	carrier string
	fire    corrFire
	end     time.Time
}

// maxRecentAtClose bounds the at-close alerts remembered for reraise.
const maxRecentAtClose = 256

// reraise raises again the at-close alerts raised while processing event
// id before. The pipeline acks an input only once its alerts are published;
// if a publish fails, the input comes again — but the window that fired is
// judged and deleted by then, so without this its alert would be lost. The
// alert is the same (same id), which the alerts stream drops if it has it.
func (e *Engine) reraise(id string, emit func(a *schemas.Alert) error) error {
	e.recentMu.Lock()
	if e.recentBy[id] == 0 {
		e.recentMu.Unlock()
		return nil
	}
	var again []atCloseFiring
	for _, f := range e.recent {
		if f.carrier == id {
			again = append(again, f)
		}
	}
	e.recentMu.Unlock()
	for _, f := range again {
		var a schemas.Alert
		ev := schemas.Event{Timestamp: f.end}
		ev.Crowsnest.SchemaVersion = schemas.SchemaVersion
		if _, err := e.raise(&a, f.fire, &ev, emit); err != nil {
			return err
		}
	}
	return nil
}

// replayClose is a replay's closing pass: every at-close window that ended
// before t, the newest event time seen, is judged (the file's events are its
// only clock). Sliding windows are not closed in a replay.
func (e *Engine) replayClose(ctx context.Context, active *ruleState, t time.Time, emit func(a *schemas.Alert) error) error {
	if t.IsZero() {
		return nil
	}
	for {
		prev := e.replayNewest.Load()
		if t.UnixNano() <= prev {
			return nil
		}
		if e.replayNewest.CompareAndSwap(prev, t.UnixNano()) {
			break
		}
	}
	return e.closeAtClose(ctx, active, t, emit)
}

// closeAtClose judges the windows of every at-close correlation that ended
// before wm.
func (e *Engine) closeAtClose(ctx context.Context, active *ruleState, wm time.Time, emit func(a *schemas.Alert) error) error {
	fire := e.raiseAtClose(emit, "")
	for i, c := range active.rules.correlations {
		if !c.atClose {
			continue
		}
		if err := c.close(ctx, active.corr[i], e.store, wm, fire); err != nil {
			return err
		}
	}
	return nil
}

// endOfInput is for a replay that read all its input: every window still
// open is judged now, as if the file's clock had passed every end.
func (e *Engine) endOfInput(ctx context.Context, emit func(a *schemas.Alert) error) error {
	return e.closeAtClose(ctx, e.active.Load(), endOfTime, emit)
}

// endOfTime is after every window's end.
var endOfTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// maintain reads back the stored windows once per rule set, then closes
// the windows the watermark has passed (judging the at-close ones and
// emitting their alerts), at most once per closeStep.
func (e *Engine) maintain(ctx context.Context, active *ruleState, wm time.Time, carrier string, emit func(a *schemas.Alert) error) error {
	if len(active.corr) == 0 {
		return nil
	}
	if e.store != nil && !active.restored.Load() {
		for i, c := range active.rules.correlations {
			if err := c.restore(ctx, active.corr[i], e.store, wm); err != nil {
				return err
			}
		}
		active.restored.Store(true)
	}
	if wm.IsZero() {
		return nil
	}
	next := e.nextClose.Load()
	if wm.UnixNano() < next || !e.nextClose.CompareAndSwap(next, wm.Add(closeStep).UnixNano()) {
		return nil
	}
	var errs []error
	fire := e.raiseAtClose(emit, carrier)
	for i, c := range active.rules.correlations {
		if err := c.close(ctx, active.corr[i], e.store, wm, fire); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// The input is retried: let its redelivery run the pass again, so
		// an alert that failed to publish is raised then, not a second later.
		e.nextClose.CompareAndSwap(wm.Add(closeStep).UnixNano(), next)
	}
	return errors.Join(errs...)
}

// suppress decides whether a match raises an alert: not when an alert of
// the same rule and entity was raised less than the window before (event
// time, either way, so late events are suppressed too). It returns how many
// matches were suppressed since the previous alert, for the new one.
func (e *Engine) suppress(r *Rule, entity, identity string, t time.Time) (raise bool, suppressed int64) {
	if e.window <= 0 {
		return true, 0
	}
	key := r.ID + "\x00" + entity
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.After(e.newest) {
		e.newest = t
	}
	s, ok := e.supp[key]
	if ok {
		d := t.Sub(s.at)
		if d < e.window && d > -e.window {
			if s.eventID == identity {
				// The same event again (a redelivery): raise the same
				// alert, which the alerts stream drops as a duplicate.
				return true, 0
			}
			s.count++
			e.counters.Suppressed.Add(1)
			return false, 0
		}
		suppressed = s.count
		s.at, s.eventID, s.count = t, identity, 0
		return true, suppressed
	}
	if len(e.supp) >= e.max {
		e.evict()
	}
	e.supp[key] = &suppression{at: t, eventID: identity}
	return true, 0
}

// evict forgets the windows that closed before the newest event; if that
// is not enough, it forgets a tenth of the table, oldest first.
func (e *Engine) evict() {
	for k, s := range e.supp {
		if e.newest.Sub(s.at) >= e.window {
			delete(e.supp, k)
			e.counters.Evicted.Add(1)
		}
	}
	if len(e.supp) < e.max {
		return
	}
	type aged struct {
		key string
		at  time.Time
	}
	all := make([]aged, 0, len(e.supp))
	for k, s := range e.supp {
		all = append(all, aged{k, s.at})
	}
	n := max(len(all)/10, 1)
	// Partial selection of the n oldest: the table is large, so avoid a sort.
	for i := 0; i < n; i++ {
		oldest := i
		for j := i + 1; j < len(all); j++ {
			if all[j].at.Before(all[oldest].at) {
				oldest = j
			}
		}
		all[i], all[oldest] = all[oldest], all[i]
		delete(e.supp, all[i].key)
		e.counters.Evicted.Add(1)
	}
}

// falcoTechnique is how Falco tags ATT&CK techniques (T1059, T1059.004).
var falcoTechnique = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)

// build fills a with the alert of rule r on ev.
func (e *Engine) build(a *schemas.Alert, r *Rule, ev *schemas.Event, entity string, suppressed int64) {
	*a = schemas.Alert{}
	a.SetEvent(ev)
	rule := r.Sigma
	a.Event.ID = AlertID(ev.Event.ID, r.ID)
	a.Event.Kind = "alert"
	a.Event.Severity = r.Severity
	a.Event.RiskScore = r.Severity
	a.Event.Ingested = e.now()
	a.Message = rule.Title
	if ev.Message != "" {
		a.Message = rule.Title + ": " + ev.Message
	}
	a.OCSF = schemas.OCSF{
		ClassUID:    ocsfDetectionFinding,
		CategoryUID: ocsfFindings,
		ActivityID:  ocsfActivityCreate,
		TypeUID:     ocsfDetectionFinding*100 + ocsfActivityCreate,
		SeverityID:  r.SeverityID,
	}
	a.Rule = schemas.Rule{
		ID:          r.ID,
		Name:        rule.Title,
		Description: rule.Description,
		Author:      r.Authors,
		Level:       r.Level,
		Ruleset:     r.Ruleset,
	}
	if len(rule.References) > 0 {
		a.Rule.Reference = rule.References[0]
	}
	a.Threat.Tactic.Name = r.Tactics
	a.Threat.Technique.ID = r.Techniques
	if ev.Crowsnest.Source == "falco" {
		// A Falco alert names its techniques in its own tags.
		var extra []string
		for _, t := range ev.Tags {
			if falcoTechnique.MatchString(t) && !slices.Contains(r.Techniques, t) && !slices.Contains(extra, t) {
				extra = append(extra, t)
			}
		}
		if len(extra) > 0 {
			a.Threat.Technique.ID = slices.Concat(r.Techniques, extra)
		}
	}
	if len(r.Tags) > 0 {
		tags := make([]string, 0, len(ev.Tags)+len(r.Tags))
		tags = append(tags, ev.Tags...)
		for _, t := range r.Tags {
			tags = appendUnique(tags, t)
		}
		a.Tags = tags
	}
	a.Crowsnest.Alert = schemas.CrowsnestAlert{
		EventIDs:        []string{ev.Event.ID},
		Entity:          entity,
		SuppressedCount: suppressed,
	}
}

// AlertID is the id of the alert rule ruleID raised on event eventID: the
// same event and rule always give the same id, so a reprocessed event
// raises no second alert downstream.
func AlertID(eventID, ruleID string) string { return msgid.Derived(eventID, ruleID) }

// Entity is what an alert is about, for suppression and triage: the
// container (runtime events), the Kubernetes object acted on, the user, or
// the host, in that order of preference.
func Entity(ev *schemas.Event) string {
	switch {
	case ev.Container.ID != "":
		id := ev.Container.ID
		if len(id) > 12 {
			id = id[:12] // sources give the full or the short form: key on the short one
		}
		return "container:" + id
	case ev.Orchestrator.Resource.Type != "" && ev.Orchestrator.Resource.Name != "":
		o := &ev.Orchestrator
		if o.Namespace == "" { // cluster-scoped
			return "k8s:" + o.Resource.Type + "/" + o.Resource.Name
		}
		return "k8s:" + o.Resource.Type + "/" + o.Namespace + "/" + o.Resource.Name
	case ev.User.Name != "":
		return "user:" + ev.User.Name
	case ev.Host.Name != "":
		return "host:" + ev.Host.Name
	}
	return "unknown"
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// levelToken keeps alert subjects valid whatever a rule says.
func levelToken(level string) string {
	level = strings.ToLower(level)
	if _, ok := levels[level]; ok {
		return level
	}
	return "medium"
}

// Level returns the alert's level as a subject token (informational … critical).
func Level(a *schemas.Alert) string { return levelToken(a.Rule.Level) }
