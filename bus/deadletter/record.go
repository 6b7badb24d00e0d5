package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// Size caps.
const (
	// DefaultMaxBody caps the body: the NATS default max_payload (1 MiB,
	// headers included) less room for the headers. Raise it with WithMaxBody
	// only together with the server's max_payload.
	DefaultMaxBody = 1<<20 - 8<<10
	// MaxReasonLen caps Crowsnest-Error in bytes.
	MaxReasonLen = 1024
	// maxProvenanceLen caps each copied provenance header.
	maxProvenanceLen = 256
)

// UnknownSource is the source token of a record whose source cannot be told.
const UnknownSource = "unknown"

// Record is one rejected message.
type Record struct {
	// Stage is the stage that rejected it: topology.ProcessorStage, the
	// sink's consumer name (sink-<name>) or topology.CollectorStage. Must be
	// a valid subject token.
	Stage string
	// Collector is, for Stage topology.CollectorStage, the rejecting
	// collector's id: it becomes the subject's last token
	// (crowsnest.dlq.collector.<source>.<collector>), which NATS permissions
	// bind to that collector's identity, and its Crowsnest-Collector header.
	// Decode fills it from the subject only, so it can be trusted where the
	// server enforces the permissions; a dead-letter of the unbound form
	// written by earlier versions decodes with it empty. Unused for other
	// stages.
	Collector string
	// Source is the source it came from; UnknownSource when not known.
	Source string
	// OriginalSubject is the subject it was read from.
	OriginalSubject string
	// OriginalID is the Nats-Msg-Id it carried; empty when it had none (the
	// record's id then comes from its content).
	OriginalID string
	// DeliveryCount is how many times the stage received it.
	DeliveryCount uint64
	// Reason is why it was rejected. Encoded as one line of at most
	// MaxReasonLen bytes.
	Reason string
	// Data is the original bytes. After Decode it may be truncated.
	Data []byte
	// Header holds the original message's headers; Encode copies the
	// collector provenance (Crowsnest-Collector, -Node, -Observed) from it.
	Header nats.Header

	// Filled by Decode.

	// ID is the record's own Nats-Msg-Id.
	ID string
	// Truncated says Data was cut to the size cap.
	Truncated bool
	// OriginalSize is len(Data) before the cut, when Truncated.
	OriginalSize int
}

// FromMsg builds the record of m, which stage rejects because of cause: the
// subject, id, source (header, else the subject), delivery count and headers
// come from m.
func FromMsg(stage string, m jetstream.Msg, cause error) Record {
	r := Record{
		Stage:           stage,
		OriginalSubject: m.Subject(),
		Data:            m.Data(),
		Header:          m.Headers(),
		Reason:          reasonOf(cause),
	}
	if h := m.Headers(); h != nil {
		r.OriginalID = h.Get(headers.MsgID)
		r.Source = h.Get(headers.Source)
	}
	if r.Source == "" {
		r.Source, _ = topology.SourceOfSubject(m.Subject())
	}
	if md, err := m.Metadata(); err == nil {
		r.DeliveryCount = md.NumDelivered
	}
	return r
}

func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Encode builds the NATS message of r, cutting the body to maxBody bytes
// (DefaultMaxBody when maxBody <= 0). It fails only when r.Stage is not a
// valid subject token, or is topology.CollectorStage without a valid
// r.Collector: everything else about a rejected message is made safe rather
// than refused, because a dead letter must not be lost to its own oddities.
func Encode(r Record, maxBody int) (*nats.Msg, error) {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	source := r.Source
	if topology.ValidateToken(source) != nil {
		source = UnknownSource
		if r.Source != "" {
			source = topology.SanitizeToken(r.Source)
		}
	}
	var (
		subj string
		err  error
	)
	if r.Stage == topology.CollectorStage {
		subj, err = topology.CollectorDeadLetterSubject(source, r.Collector)
	} else {
		subj, err = topology.DeadLetterSubject(r.Stage, source)
	}
	if err != nil {
		return nil, fmt.Errorf("encode dead-letter record: %w", err)
	}
	origID := oneLine(r.OriginalID, msgid.MaxLen)
	idBase := origID
	if idBase == "" {
		// No identity: the content is, computed over the whole body so two
		// different records that share a truncated prefix stay apart.
		idBase = msgid.FromContent(source, r.Data)
	}

	m := nats.NewMsg(subj)
	m.Header.Set(headers.MsgID, msgid.DeadLetter(r.Stage, idBase))
	m.Header.Set(headers.Stage, r.Stage)
	m.Header.Set(headers.Source, source)
	reason := oneLine(r.Reason, MaxReasonLen)
	if reason == "" {
		reason = "no reason given"
	}
	m.Header.Set(headers.Error, reason)
	m.Header.Set(headers.DeliveryCount, strconv.FormatUint(r.DeliveryCount, 10))
	if s := oneLine(r.OriginalSubject, maxProvenanceLen); s != "" {
		m.Header.Set(headers.OriginalSubject, s)
	}
	if origID != "" {
		m.Header.Set(headers.OriginalMsgID, origID)
	}
	for _, k := range []string{headers.Collector, headers.Node, headers.Observed} {
		if v := oneLine(r.Header.Get(k), maxProvenanceLen); v != "" {
			m.Header.Set(k, v)
		}
	}
	if r.Stage == topology.CollectorStage {
		// The header says what the subject proves; never another id.
		m.Header.Set(headers.Collector, r.Collector)
	}
	m.Data = r.Data
	if len(r.Data) > maxBody {
		m.Data = r.Data[:maxBody]
		m.Header.Set(headers.Truncated, "true")
		m.Header.Set(headers.OriginalSize, strconv.Itoa(len(r.Data)))
	}
	return m, nil
}

// oneLine makes s a header-safe single line: control
// characters (CR, LF, tabs, ...) become spaces, invalid UTF-8 becomes U+FFFD,
// edge spaces go (NATS would trim them), and a cut at limit bytes ends in
// "…" on a rune boundary.
func oneLine(s string, limit int) string {
	if s == "" {
		return ""
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	cut := max(limit-len(ellipsis), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimSpace(s[:cut]) + ellipsis
}

// ErrNotDeadLetter is returned by Decode for a message that is not a
// dead-letter record.
var ErrNotDeadLetter = errors.New("not a dead-letter record")

// Decode reads back a record Encode built.
func Decode(m *nats.Msg) (Record, error) {
	if m == nil {
		return Record{}, fmt.Errorf("decode dead-letter record: nil message: %w", ErrNotDeadLetter)
	}
	return decode(m.Subject, m.Header, m.Data)
}

// DecodeMsg reads back a record consumed from CROWSNEST_DLQ.
func DecodeMsg(m jetstream.Msg) (Record, error) {
	return decode(m.Subject(), m.Headers(), m.Data())
}

func decode(subject string, h nats.Header, data []byte) (Record, error) {
	if !strings.HasPrefix(subject, topology.DeadLetterSubjectPrefix+".") || h.Get(headers.Stage) == "" {
		return Record{}, fmt.Errorf("decode dead-letter record on %q: %w", subject, ErrNotDeadLetter)
	}
	r := Record{
		ID:              h.Get(headers.MsgID),
		Stage:           h.Get(headers.Stage),
		Source:          h.Get(headers.Source),
		Reason:          h.Get(headers.Error),
		OriginalSubject: h.Get(headers.OriginalSubject),
		OriginalID:      h.Get(headers.OriginalMsgID),
		Data:            data,
		Truncated:       h.Get(headers.Truncated) == "true",
		Header:          nats.Header{},
	}
	for _, k := range []string{headers.Collector, headers.Node, headers.Observed} {
		if v := h.Get(k); v != "" {
			r.Header.Set(k, v)
		}
	}
	if r.Stage == topology.CollectorStage {
		r.Collector, _ = topology.CollectorOfDeadLetter(subject)
	}
	var errs []error
	if v := h.Get(headers.DeliveryCount); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", headers.DeliveryCount, v, err))
		}
		r.DeliveryCount = n
	}
	if r.Truncated {
		n, err := strconv.Atoi(h.Get(headers.OriginalSize))
		if err != nil || n < len(data) {
			errs = append(errs, fmt.Errorf("%s %q: want the size before truncation", headers.OriginalSize, h.Get(headers.OriginalSize)))
		}
		r.OriginalSize = n
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("decode dead-letter record %s: %w", r.ID, err)
	}
	return r, nil
}

// MsgPublisher is what Publisher needs of JetStream; jetstream.JetStream
// satisfies it.
type MsgPublisher interface {
	PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Publisher publishes dead-letter records and waits for JetStream to store
// them. It is safe for concurrent use.
type Publisher struct {
	pub     MsgPublisher
	maxBody int
}

// Option configures a Publisher.
type Option func(*Publisher)

// WithMaxBody sets the body cap (default DefaultMaxBody).
func WithMaxBody(n int) Option {
	return func(p *Publisher) {
		if n > 0 {
			p.maxBody = n
		}
	}
}

// NewPublisher returns a Publisher over pub.
func NewPublisher(pub MsgPublisher, opts ...Option) *Publisher {
	p := &Publisher{pub: pub, maxBody: DefaultMaxBody}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish stores r in CROWSNEST_DLQ and returns nil once JetStream has
// acknowledged it, including when it was already stored (a duplicate of an
// earlier rejection of the same message). On error nothing may be assumed
// stored: the caller must not Term the original.
func (p *Publisher) Publish(ctx context.Context, r Record) error {
	m, err := Encode(r, p.maxBody)
	if err != nil {
		return err
	}
	// ExpectStream makes a misrouted subject (another stream capturing
	// crowsnest.dlq.*) an error instead of a record in the wrong place.
	if _, err := p.pub.PublishMsg(ctx, m, jetstream.WithExpectStream(topology.DeadLetterStream)); err != nil {
		return fmt.Errorf("publish dead-letter record %s to %s: %w", m.Header.Get(headers.MsgID), m.Subject, err)
	}
	return nil
}
