package normalize

import (
	"crypto/sha256"
	"encoding/hex"
)

// maxIDLen bounds an event id: it travels as the Nats-Msg-Id header, the
// Elasticsearch _id (512 bytes at most) and a ClickHouse key.
const maxIDLen = 256

// ContentID is the identity of a record without a natural one:
// "<source>-" and the hex of the first 128 bits of the SHA-256 of data. It is
// the same function as bus/msgid's content id, kept here until that package
// is stable, so that the processor and the collectors agree on redeliveries.
func ContentID(source string, data []byte) string {
	sum := sha256.Sum256(data)
	b := make([]byte, 0, len(source)+1+32)
	b = append(b, source...)
	b = append(b, '-')
	b = hex.AppendEncode(b, sum[:16])
	return string(b)
}

func contentIDString(source, text string) string {
	sum := sha256.Sum256([]byte(text))
	b := make([]byte, 0, len(source)+1+32)
	b = append(b, source...)
	b = append(b, '-')
	b = hex.AppendEncode(b, sum[:16])
	return string(b)
}

// ValidID reports whether id can serve as an event id: 1 to 256 printable
// ASCII bytes without spaces, safe in a NATS header and an Elasticsearch _id.
// A natural id from a record that fails this (an attacker-chosen audit id
// with a newline, say) is replaced by the content id.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
