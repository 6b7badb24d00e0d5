package publish

import (
	"context"
	"errors"
	"time"
)

// Record is one raw record a source hands to the publisher.
type Record struct {
	// Source is the source name (topology.SourceK8sAudit, ...): it picks the
	// raw stream and subject.
	Source string
	// Data is the record exactly as the source produced it. The publisher
	// neither parses nor keeps it after the record is acknowledged; the
	// caller must not modify it until then.
	Data []byte
	// ID is the record's natural identity (bus/msgid), sent as Nats-Msg-Id
	// so that a re-sent record is stored once. Empty: derived from the
	// content with msgid.FromContent(Source, Data).
	ID string
	// Observed is when the collector read the record. Zero: now.
	Observed time.Time
	// Key is the entity the record is about, as collectors/entitykey spells
	// it ("ns/<namespace>", "user/<name>", "node/<node>"): it picks the
	// record's partition, so that one entity's records reach one processor
	// replica in order. Only its hash (topology.KeyToken) goes in the
	// subject. Empty: "node/<Config.Node>", the collector's node. The spool
	// keeps it.
	Key string
	// DeadLetter, when set, is why the source rejected the record: it goes
	// to the dead-letter stream with this reason instead of the raw stream
	// (Batch.AddDeadLetter sets it). It is a field, not an argument, so that
	// a record the spool keeps while NATS is away is replayed as the same
	// dead-letter record.
	DeadLetter string
}

// Transformer changes a record before it is published: the seam for
// redaction. It runs before the size check and before the message id is
// derived from content, so a redacted record is what gets stored, counted
// and deduplicated. An error rejects the record: Add returns it wrapped in
// ErrTransform and nothing is published (a record that failed redaction must
// not reach the bus, not even the dead-letter stream).
type Transformer interface {
	Transform(ctx context.Context, rec Record) (Record, error)
}

// TransformFunc adapts a function to Transformer.
type TransformFunc func(ctx context.Context, rec Record) (Record, error)

// Transform calls f.
func (f TransformFunc) Transform(ctx context.Context, rec Record) (Record, error) { return f(ctx, rec) }

// Spool is the seam for a disk spool (collectors/spool). When one is set and
// the connection to NATS is down, the publisher hands every new record to the
// spool instead of publishing it, and moves records already in flight there
// when their publish fails; the record's Ack completes when Put returns. The
// record is final: transformed, with its ID and Observed time set. The spool
// owns re-publishing it (through this publisher) once NATS is back, every
// field as it was (a DeadLetter record stays one).
type Spool interface {
	Put(ctx context.Context, rec Record) error
}

var (
	// ErrClosed is returned by Add after Close, and is the Ack error of a
	// record Close gave up on before JetStream acknowledged it.
	ErrClosed = errors.New("publisher closed")
	// ErrInvalidRecord is wrapped by errors about a record that can never be
	// published (an unknown source): a bug in the calling source.
	ErrInvalidRecord = errors.New("invalid record")
	// ErrTransform is wrapped by errors from the Transformer.
	ErrTransform = errors.New("transform record")
	// ErrSealed is returned by Batch.Add after Seal.
	ErrSealed = errors.New("batch sealed")
	// ErrDropped is wrapped by a Spool's Put error when the user's policy
	// drops the record rather than make the source wait (spool full_policy
	// drop). The record is settled — the source goes on — and counted as
	// intentionally discarded; the spool reports the loss (gap records).
	ErrDropped = errors.New("record dropped by policy")
)
