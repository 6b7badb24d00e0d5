package topology

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The sources crowsnest reads. Each has its own raw stream.
const (
	SourceK8sAudit  = "k8s_audit"
	SourceFalco     = "falco"
	SourceTetragon  = "tetragon"
	SourceDocker    = "docker"
	SourceAuditd    = "auditd"
	SourceProcwatch = "procwatch"
	SourceJSON      = "json"
	// SourceCollector is the collectors' own telemetry: gap records that
	// count what a collector lost (records it was configured to drop, spool
	// bytes lost to corruption), so that the loss shows in the SIEM. Its raw
	// subject is bound to the collector like any other, so a gap record is
	// as trustworthy as the collector's own records.
	SourceCollector = "collector"
)

// Sources returns every source, in a stable order. It returns a fresh slice so
// that no caller can change the topology of another.
func Sources() []string {
	return []string{
		SourceK8sAudit,
		SourceFalco,
		SourceTetragon,
		SourceDocker,
		SourceAuditd,
		SourceProcwatch,
		SourceJSON,
		SourceCollector,
	}
}

// ValidSource reports whether s is one of Sources.
func ValidSource(s string) bool {
	switch s {
	case SourceK8sAudit, SourceFalco, SourceTetragon, SourceDocker,
		SourceAuditd, SourceProcwatch, SourceJSON, SourceCollector:
		return true
	}
	return false
}

// MaxTokenLen caps a subject token. Kubernetes node and pod names may be 253
// bytes; a cap keeps subjects, permissions and headers small and bounded.
const MaxTokenLen = 128

// ErrInvalidToken is wrapped by every error ValidateToken returns.
var ErrInvalidToken = errors.New("invalid subject token")

// ValidateToken reports whether tok can be one token of a NATS subject that
// crowsnest builds: non-empty, at most MaxTokenLen bytes, valid UTF-8, and no
// '.', '*', '>', whitespace or control characters (which would split the
// subject, act as wildcards or break the protocol line).
func ValidateToken(tok string) error {
	if tok == "" {
		return fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	if len(tok) > MaxTokenLen {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidToken, len(tok), MaxTokenLen)
	}
	if !utf8.ValidString(tok) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidToken, tok)
	}
	for _, r := range tok {
		if !tokenRuneOK(r) {
			return fmt.Errorf("%w: %q contains %q (no '.', '*', '>', whitespace or control characters)", ErrInvalidToken, tok, r)
		}
	}
	return nil
}

func tokenRuneOK(r rune) bool {
	switch {
	case r == '.' || r == '*' || r == '>':
		return false
	case unicode.IsSpace(r) || unicode.IsControl(r):
		return false
	case r == utf8.RuneError:
		return false
	}
	return true
}

// SanitizeToken maps an arbitrary name (a hostname, a pod name, a user-chosen
// collector id) to a token ValidateToken accepts, deterministically. It
// lowercases (host names are case-insensitive, so "Node-1" and "node-1" are one
// collector) and keeps ASCII letters, digits, '-' and '_'; every other byte
// becomes '_'. "node1.example.com" becomes "node1_example_com". An empty name
// becomes "unknown". A name longer than MaxTokenLen keeps its start and ends in
// a hash of the whole name, so two long names that share a prefix stay apart.
//
// Distinct names can map to one token ("a.b" and "a_b"); callers that need
// distinct identities must choose names that differ in kept characters.
func SanitizeToken(name string) string {
	if name == "" {
		return "unknown"
	}
	var b strings.Builder
	b.Grow(min(len(name), MaxTokenLen))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + ('a' - 'A'))
		default:
			b.WriteByte('_')
		}
	}
	tok := b.String()
	if len(tok) <= MaxTokenLen {
		return tok
	}
	const hashLen = 16 // hex chars: 64 bits, plenty to keep collector ids apart
	sum := sha256.Sum256([]byte(name))
	return tok[:MaxTokenLen-hashLen-1] + "-" + hex.EncodeToString(sum[:])[:hashLen]
}
