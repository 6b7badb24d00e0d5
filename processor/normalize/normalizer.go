package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/vouch"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// A Normalizer applies the limits, runs the source's mapper and fills the
// fields every event carries. It holds no per-record state (only a bounded
// cache of parsed image references): one Normalizer serves every goroutine;
// each goroutine brings its own Event to fill.
type Normalizer struct {
	reg          *Registry
	now          func() time.Time
	maxRecord    int
	maxDepth     int
	keepOriginal bool
	maxOriginal  int
	replaceUTF8  bool
	trusted      TrustedRegistries
	images       *imageCache
	vouch        *vouch.Voucher
}

// An Option changes what New builds.
type Option func(*Normalizer)

// WithClock sets the clock of event.ingested (default time.Now), for tests
// and replays that need reproducible output.
func WithClock(now func() time.Time) Option {
	return func(n *Normalizer) { n.now = now }
}

// New returns a Normalizer applying cfg to the sources of reg.
func New(cfg Config, reg *Registry, opts ...Option) (*Normalizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("normalize config: %w", err)
	}
	if reg == nil {
		return nil, errors.New("normalize: nil registry")
	}
	n := &Normalizer{
		reg:          reg,
		now:          time.Now,
		maxRecord:    int(cfg.MaxRecordBytes),
		maxDepth:     cfg.MaxDepth,
		keepOriginal: cfg.KeepOriginal,
		maxOriginal:  int(cfg.MaxOriginalBytes),
		replaceUTF8:  cfg.InvalidUTF8 == UTF8Replace,
		trusted:      cfg.TrustedRegistries,
		images:       &imageCache{},
	}
	var err error
	if n.vouch, err = vouch.New(cfg.Vouch); err != nil {
		return nil, fmt.Errorf("normalize config: %w", err)
	}
	for _, o := range opts {
		o(n)
	}
	return n, nil
}

// Normalize turns rec into ev, which it resets first (see [Reset]: ev's
// slices and maps are reused, so copy what must outlive the next call). It
// returns a *RejectError when rec cannot become an event; every error it
// returns is one. A record that batches several events is rejected with
// multiple_records: use NormalizeEach for sources that batch.
func (n *Normalizer) Normalize(rec *Record, ev *schemas.Event) error {
	e, text, err := n.prepare(rec)
	if err != nil {
		return err
	}
	return n.mapPart(e, rec, text, true, ev)
}

// NormalizeEach is Normalize for records that may hold several events (see
// [Splitter]). It calls emit once per event, in order, with either the
// filled ev or the *RejectError of that event (for a part of a batch:
// "record 2 of the batch: …"); ev is reset before each. It returns a
// *RejectError when the record as a whole is rejected before any event (size,
// UTF-8, JSON, unknown source, a malformed batch), or the first error emit
// returns, which stops the iteration.
func (n *Normalizer) NormalizeEach(rec *Record, ev *schemas.Event, emit func(ev *schemas.Event, err error) error) error {
	e, text, err := n.prepare(rec)
	if err != nil {
		return err
	}
	err = n.mapPart(e, rec, text, true, ev)
	if err == nil {
		return emit(ev, nil) // nearly every record: no batch to look for
	}
	s, ok := e.mapper.(Splitter)
	if reason, _ := RejectReason(err); !ok || reason != ReasonMultipleRecords {
		return emit(nil, err)
	}
	prev := rec.text
	rec.text = text
	parts, err := s.Split(rec)
	rec.text = prev
	if err != nil {
		var re *RejectError
		if !errors.As(err, &re) {
			err = &RejectError{Reason: ReasonMappingFailed, Detail: err.Error(), Err: err}
		}
		return err
	}
	for i, part := range parts {
		if err := n.mapPart(e, rec, part, false, ev); err != nil {
			err = fmt.Errorf("record %d of the batch: %w", i+1, err)
			if err := emit(nil, err); err != nil {
				return err
			}
			continue
		}
		if err := emit(ev, nil); err != nil {
			return err
		}
	}
	return nil
}

// prepare applies the limits every record passes before a mapper sees it and
// returns the record as the one string mappers slice.
func (n *Normalizer) prepare(rec *Record) (*entry, string, error) {
	e := n.reg.entries[rec.Source]
	if e == nil {
		return nil, "", &RejectError{Reason: ReasonUnknownSource, Detail: fmt.Sprintf("no mapper for source %.64q", rec.Source)}
	}
	data := rec.Data
	if len(data) > n.maxRecord {
		return nil, "", &RejectError{Reason: ReasonTooLarge, Detail: fmt.Sprintf("%d bytes, more than max_record_bytes %d", len(data), n.maxRecord)}
	}
	if !utf8.Valid(data) {
		if !n.replaceUTF8 {
			return nil, "", &RejectError{Reason: ReasonInvalidUTF8, Detail: fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8At(data))}
		}
		data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
	}
	if e.format != FormatText {
		if reason, at := checkJSON(data, n.maxDepth); reason != "" {
			detail := fmt.Sprintf("at byte %d", at)
			if reason == ReasonTooDeep {
				detail = fmt.Sprintf("nesting deeper than max_depth %d at byte %d", n.maxDepth, at)
			}
			return nil, "", &RejectError{Reason: reason, Detail: detail}
		}
	}
	if rec.Owned && len(data) > 0 {
		// Data is never written again (see Record.Owned), nor is a repaired
		// copy (invalid UTF-8 replaced): read in place, no 1 KB copy per event.
		return e, unsafe.String(unsafe.SliceData(data), len(data)), nil
	}
	return e, string(data), nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// mapPart maps one event's text (the whole record, or one part of a batch)
// and fills the common fields.
func (n *Normalizer) mapPart(e *entry, rec *Record, text string, whole bool, ev *schemas.Event) error {
	Reset(ev)
	prev := rec.text
	rec.text = text
	err := e.mapper.Map(rec, ev)
	rec.text = prev
	if err != nil {
		var re *RejectError
		if !errors.As(err, &re) {
			return &RejectError{Reason: ReasonMappingFailed, Detail: err.Error(), Err: err}
		}
		return err
	}
	n.finish(e, rec, text, whole, ev)
	return n.checkIdentity(rec, ev)
}

func (n *Normalizer) finish(e *entry, rec *Record, text string, whole bool, ev *schemas.Event) {
	f := &ev.Event
	// A natural id that is not header-safe (an attacker-chosen audit id with
	// a newline, say) is not trusted: the content id replaces it.
	if f.ID == "" || msgid.Validate(f.ID) != nil {
		switch {
		case whole && msgid.Validate(rec.ID) == nil:
			f.ID = rec.ID
		case whole:
			f.ID = msgid.FromContent(e.source, rec.Data)
		default:
			// A part of a batch: the message id names the whole batch.
			f.ID = msgid.FromContent(e.source, []byte(text))
		}
	}
	now := n.now()
	f.Ingested = now
	f.Created = rec.Observed
	if ev.Timestamp.IsZero() {
		ev.Timestamp = rec.Observed
		if ev.Timestamp.IsZero() {
			ev.Timestamp = now
		}
	}
	if f.Kind == "" {
		f.Kind = "event"
	}
	f.Dataset = e.dataset
	f.Module = "crowsnest"

	c := &ev.Crowsnest
	c.SchemaVersion = schemas.SchemaVersion
	c.Source = e.source
	c.Collector.ID = rec.Collector
	c.Collector.Node = rec.Node
	if n.keepOriginal {
		orig := text
		if len(orig) > n.maxOriginal {
			cut := n.maxOriginal
			for cut > 0 && !utf8.RuneStart(orig[cut]) {
				cut--
			}
			orig = orig[:cut]
			c.Truncated = true
		}
		f.Original = orig
	}

	ev.OCSF.TypeUID = int64(ev.OCSF.ClassUID)*100 + int64(ev.OCSF.ActivityID)

	// Fields of type ip must hold addresses: Elasticsearch rejects the whole
	// document over one malformed value, so drop such values here.
	ev.Source.IP = validIP(ev.Source.IP)
	ev.Destination.IP = validIP(ev.Destination.IP)
	ev.Host.IP = validIPs(ev.Host.IP)
	ev.Kubernetes.Audit.SourceIPs = validIPs(ev.Kubernetes.Audit.SourceIPs)

	r := &ev.Related
	r.IP = validIPs(dedup(r.IP))
	r.User = dedup(r.User)
	r.Hosts = dedup(r.Hosts)
	r.Hash = dedup(r.Hash)

	n.images.fill(&ev.Container.Image)
	if len(n.trusted) > 0 {
		n.setTrusted(ev)
	}
}

// setTrusted sets crowsnest.image.trusted when the event names an image: true
// only if every image it names (container.image.name and, for a submitted
// pod spec, every image of the spec) comes from a trusted registry.
func (n *Normalizer) setTrusted(ev *schemas.Event) {
	img := &ev.Container.Image
	seen := false
	trusted := true
	if img.Name != "" {
		seen = true
		trusted = n.trusted.Trusts(ImageRef{Registry: img.Registry, Repository: img.Repository})
	}
	for _, s := range ev.Kubernetes.PodSpec.Images {
		if !trusted {
			break
		}
		seen = true
		ref, ok := n.images.parse(s)
		trusted = ok && n.trusted.Trusts(ref)
	}
	if seen {
		ev.Crowsnest.Image.Trusted = &trusted
	}
}

// dedup drops empty and repeated strings in place, keeping first-seen order.
func dedup(s []string) []string {
	out := s[:0]
	for _, x := range s {
		if x == "" {
			continue
		}
		dup := false
		for _, y := range out {
			if y == x {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, x)
		}
	}
	return out
}

// validIP returns s if it is an IPv4 or IPv6 address without a zone, else "".
func validIP(s string) string {
	if s == "" {
		return ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return ""
	}
	return s
}

// validIPs drops the entries that are not addresses, in place.
func validIPs(s []string) []string {
	out := s[:0]
	for _, x := range s {
		if validIP(x) != "" {
			out = append(out, x)
		}
	}
	return out
}
