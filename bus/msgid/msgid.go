package msgid

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MaxLen caps an id in bytes. Elasticsearch allows 512 for _id; 128 keeps
// headers, indexes and ClickHouse keys compact and still fits a Kubernetes
// audit id (36) plus its stage and a few derivations.
const MaxLen = 128

// hashHex is how many hex characters of SHA-256 an id carries: 32 (128 bits),
// enough that a collision among a lifetime of events is not a concern.
const hashHex = 32

// ErrNoIdentity says the input has no natural identity (an empty audit id or
// stage); use FromContent instead.
var ErrNoIdentity = errors.New("no natural identity")

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid message id")

// K8sAudit is the id of a Kubernetes audit event: "<auditID>-<stage>", e.g.
// "4f6a…-ResponseComplete". The API server emits one audit event per stage
// under one auditID, so the pair is the event's identity. Both are kept
// verbatim when they are header-safe and short, as they always are from a
// real API server.
func K8sAudit(auditID, stage string) (string, error) {
	if auditID == "" || stage == "" {
		return "", fmt.Errorf("kubernetes audit id (auditID %q, stage %q): %w", auditID, stage, ErrNoIdentity)
	}
	return normalize(auditID + "-" + stage), nil
}

// FromContent is the id of a record whose source gives it no identity:
// "<source>-<first 16 bytes of SHA-256(record) in hex>". Two byte-identical
// records of one source get one id, so within the duplicate window they are
// one event; records normally differ at least in a timestamp.
func FromContent(source string, record []byte) string {
	sum := sha256.Sum256(record)
	var b strings.Builder
	b.Grow(len(source) + 1 + hashHex)
	b.WriteString(source)
	b.WriteByte('-')
	var h [hashHex]byte
	hex.Encode(h[:], sum[:hashHex/2])
	b.Write(h[:])
	id := b.String()
	if safe(source) && len(id) <= MaxLen {
		return id // the hot path: no second pass
	}
	return normalize(id)
}

// Derived is the id of a message derived from another, such as an alert a
// rule raised on an event: "<parentID>-<suffix>". The same parent and suffix
// (e.g. the rule id) always give the same id, so a reprocessed event raises
// no second alert.
func Derived(parentID, suffix string) string {
	return normalize(parentID + "-" + suffix)
}

// DeadLetter is the id of the dead-letter record of a message stage rejected:
// "dlq-<stage>-<originalID>". A rejection repeated on redelivery maps to the
// same id and is recorded once.
func DeadLetter(stage, originalID string) string {
	return normalize("dlq-" + stage + "-" + originalID)
}

// Validate reports whether id is one this package could return: non-empty,
// at most MaxLen bytes, visible ASCII only. Use it on ids read from outside.
func Validate(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(id) > MaxLen {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalid, len(id), MaxLen)
	}
	for i := 0; i < len(id); i++ {
		if !safeByte(id[i]) {
			return fmt.Errorf("%w: byte %#x at %d (want visible ASCII: no spaces, CR, LF or control bytes)", ErrInvalid, id[i], i)
		}
	}
	return nil
}

// normalize returns id when it is valid; otherwise its first bytes with
// unsafe ones replaced by '_', a '-', and a hash of the whole id, at most
// MaxLen bytes in all. Equal inputs give equal outputs; the hash keeps
// unequal inputs apart even when their readable prefixes match.
func normalize(id string) string {
	if id != "" && len(id) <= MaxLen && safe(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	keep := min(len(id), MaxLen-1-hashHex)
	var b strings.Builder
	b.Grow(keep + 1 + hashHex)
	for i := 0; i < keep; i++ {
		c := id[i]
		if !safeByte(c) {
			c = '_'
		}
		b.WriteByte(c)
	}
	if keep > 0 {
		b.WriteByte('-')
	}
	var h [hashHex]byte
	hex.Encode(h[:], sum[:hashHex/2])
	b.Write(h[:])
	return b.String()
}

func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			return false
		}
	}
	return true
}

// safeByte admits visible ASCII. Spaces go too: NATS trims header values,
// so an id with an edge space would not read back equal.
func safeByte(c byte) bool { return c > ' ' && c < 0x7f }
