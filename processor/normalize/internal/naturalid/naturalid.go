package naturalid

import (
	"crypto/sha256"
	"encoding/hex"
)

// ID returns "<source>-<32 hex digits>": 128 bits of SHA-256 over the parts,
// each followed by a NUL so that ("ab","c") and ("a","bc") differ. It returns
// "" when a part is empty, so the caller falls back to the Normalizer's
// content id rather than minting one identity for different events. source
// must be a short header-safe name (it is a constant of the caller).
func ID(source string, parts ...string) string {
	n := 0
	for _, p := range parts {
		if p == "" {
			return ""
		}
		n += len(p) + 1
	}
	var stack [256]byte
	buf := stack[:0]
	if n > len(stack) {
		buf = make([]byte, 0, n)
	}
	for _, p := range parts {
		buf = append(buf, p...)
		buf = append(buf, 0)
	}
	sum := sha256.Sum256(buf)
	var out [64 + 1 + 32]byte
	if len(source) > 64 {
		source = source[:64]
	}
	k := copy(out[:], source)
	out[k] = '-'
	hex.Encode(out[k+1:], sum[:16])
	return string(out[:k+1+32])
}
