package schemas

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The generated encoders call these helpers. They exist because the
// processor encodes every event on the hot path: no reflection, one buffer.

const hexDigits = "0123456789abcdef"

func appendKey(b []byte, key string, first *bool) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// AppendJSONString appends s as a JSON string, escaped exactly as the event
// encoders escape it (see appendString): for other hot-path writers of JSON,
// so the project has one string escaper.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// appendString writes s as a JSON string, escaping as encoding/json does
// (including <, >, & and U+2028/2029) and replacing invalid UTF-8 with U+FFFD.
// It runs over every string of every event, and event.original (JSON in
// JSON: a '"' every few bytes) is most of an audit event's output, so it
// works a word at a time: each eight-byte word is appended with one store,
// and only the bytes before the first one needing attention are kept.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	i := 0
	for i+8 <= len(s) {
		w := load8(s, i)
		m := needsEscape(w)
		if m == 0 {
			b = binary.LittleEndian.AppendUint64(b, w)
			i += 8
			continue
		}
		n, k := len(b), bits.TrailingZeros64(m)/8
		b = binary.LittleEndian.AppendUint64(b, w)[:n+k]
		b, i = appendSpecial(b, s, i+k)
	}
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf && plainASCII[c] {
			b = append(b, c)
			i++
			continue
		}
		b, i = appendSpecial(b, s, i)
	}
	return append(b, '"')
}

// appendSpecial writes the character at s[i], one that is not plain ASCII,
// and returns the index after it.
func appendSpecial(b []byte, s string, i int) ([]byte, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default: // control bytes, <, >, &
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		return b, i + 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && size == 1:
		b = append(b, `\ufffd`...)
	case r == '\u2028' || r == '\u2029':
		b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
	default:
		b = append(b, s[i:i+size]...)
	}
	return b, i + size
}

// plainASCII reports the ASCII bytes appendString copies as they are.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// load8 reads s[i:i+8] as a little-endian word; the compiler turns the
// shifts into one load.
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// needsEscape returns a word whose lowest set high bit marks the first of the
// eight bytes that appendString cannot copy as is: a control byte, '"',
// '\\', '<', '>', '&' or a non-ASCII byte. (The has-zero-byte trick: a byte
// above a marked one may be marked falsely, never the lowest one, and a word
// with no such byte is never marked.) Written out so that it inlines.
func needsEscape(w uint64) uint64 {
	// '"' (0x22) and '&' (0x26) differ in one bit, as do '<' (0x3c) and '>'
	// (0x3e): setting that bit first finds each pair with one test.
	qa, lg, bs := (w|0x04*lsb)^('&'*lsb), (w|0x02*lsb)^('>'*lsb), w^('\\'*lsb)
	return ((w-0x20*lsb)&^w | (qa-lsb)&^qa | (lg-lsb)&^lg | (bs-lsb)&^bs | w) & msb
}

// TimeLayout is how every timestamp is written: UTC, milliseconds, as the
// ClickHouse DateTime64(3) columns and Elasticsearch date fields hold them.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// appendTime writes t as TimeLayout by hand: it runs several times per event
// and time.AppendFormat costs four times as much. Years outside 0..9999 fall
// back to AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, TimeLayout)
		return append(b, '"')
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(b, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendStringMap writes keys sorted, so the same event always encodes to the same bytes.
// The keys are sorted in a stack array when they fit (annotations, labels
// usually do): no allocation per encode.
func appendStringMap(b []byte, m map[string]string) []byte {
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendRaw writes a kept JSON value verbatim. Mappers keep only values the
// normalizer validated (normalize.Limits.KeepJSON), so it is not re-checked
// here, on every encode; a store that still rejects a document dead-letters it.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	return append(b, raw...)
}

// FieldInfo describes one registry field for code that maps events onto
// stores (sink column mapping) or rules (Sigma field names).
type FieldInfo struct {
	Name           string // ECS dotted name
	Type           string // registry type
	Array          bool
	Nullable       bool
	Required       bool
	AlertOnly      bool
	Column         string // ClickHouse column
	ClickHouseType string
}
