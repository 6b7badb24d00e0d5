package normalize

import "github.com/crowsnest-siem/crowsnest/schemas"

// A Mapper turns one record of its source into an event.
//
// Map reads rec.Text() (never rec.Data: inside a batch it is the part being
// mapped) and fills ev, which the caller has reset (see [Reset]); it appends
// to ev's slices from [:0] and never lets two fields share a backing array,
// so events can be reused without allocating. It sets ev.Event.ID to the
// record's natural identity when the source has one (left empty, the
// Normalizer uses the collector's id or a content hash), @timestamp from the
// record, the OCSF class, category, activity and severity, and every
// source-specific field. It leaves the fields every event gets to the
// Normalizer.
//
// Map returns a *RejectError (reason codes in this package, [NotSource] for
// a record of the wrong shape) when the record cannot become an event. The
// Normalizer has already checked size, UTF-8, JSON validity and depth (for a
// [FormatText] source only size and UTF-8), so a mapper may use gjson on the
// text without re-validating it. Map must be safe for concurrent use and must
// not panic on any input that passed those checks.
type Mapper interface {
	Map(rec *Record, ev *schemas.Event) error
}

// A Splitter is a Mapper whose source batches several events into one record
// (an AKS Event Hub "records" array, a Kubernetes audit webhook EventList).
// Map rejects a batch of several events with multiple_records; only then does
// [Normalizer.NormalizeEach] call Split, so single records — nearly all of
// them — pay nothing for batching. Split returns the parts, each a substring
// of rec.Text() holding one record Map accepts, in order.
type Splitter interface {
	Split(rec *Record) ([]string, error)
}

// A Factory builds a source's mapper from the normalizer's configuration.
// Each mapper package exports NewFactory(); normalize/sources lists them.
type Factory struct {
	Source string
	New    func(cfg Config) (Mapper, error)
	// Format is how the source encodes its records; the zero value is JSON.
	Format Format
}

// A Format is the encoding of a source's raw records, which decides the
// checks the Normalizer makes before the mapper sees one.
type Format uint8

const (
	// FormatJSON records are one JSON value each: size, UTF-8, JSON
	// validity and nesting depth are checked, so mappers use gjson freely.
	FormatJSON Format = iota
	// FormatText records are text (auditd's grouped log lines): size and
	// UTF-8 are checked, and the mapper parses the text itself.
	FormatText
)
