package topology

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes that config files write as people do: "1024",
// "512MB" (decimal, 10^6), "10GiB" (binary, 2^30), "1.5GiB", "10 GiB", or the
// Kubernetes forms "512Mi", "10Gi". Units are B, KB, MB, GB, TB, PB, KiB,
// MiB, GiB, TiB, PiB (any case). A bare K, M or G is refused: it is ambiguous
// between 1000 and 1024. A fraction must come to whole bytes. These are the
// rules of daemon/config's ByteSize, so users meet one format; this one is
// signed because JetStream's limits are int64.
//
// It decodes from YAML and JSON through encoding.TextUnmarshaler, so the
// config loader needs no special case.
type ByteSize int64

// Binary multiples, for defaults in code: 10 * topology.GiB.
const (
	B   ByteSize = 1
	KiB          = 1024 * B
	MiB          = 1024 * KiB
	GiB          = 1024 * MiB
	TiB          = 1024 * GiB
	PiB          = 1024 * TiB
)

// Decimal multiples.
const (
	KB ByteSize = 1000
	MB          = 1000 * KB
	GB          = 1000 * MB
	TB          = 1000 * GB
	PB          = 1000 * TB
)

type sizeUnit struct {
	name string
	size ByteSize
}

// sizeUnits, largest first and binary before decimal at each magnitude: the
// order in which String picks the unit that shows a size exactly.
var sizeUnits = [...]sizeUnit{
	{"PiB", PiB}, {"PB", PB}, {"TiB", TiB}, {"TB", TB}, {"GiB", GiB}, {"GB", GB},
	{"MiB", MiB}, {"MB", MB}, {"KiB", KiB}, {"KB", KB},
}

func unitSize(s string) (ByteSize, bool) {
	s = strings.ToLower(s)
	switch s {
	case "", "b":
		return B, true
	case "ki", "mi", "gi", "ti", "pi":
		s += "b"
	}
	for _, u := range sizeUnits {
		if strings.ToLower(u.name) == s {
			return u.size, true
		}
	}
	return 0, false
}

// ParseByteSize parses s as described on ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	if len(s) > 64 {
		return 0, fmt.Errorf("invalid byte size %.20q...: too long", s)
	}
	in := strings.TrimSpace(s)
	end := strings.IndexFunc(in, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(in)
	}
	num, suffix := in[:end], strings.TrimSpace(in[end:])
	if num == "" || strings.Count(num, ".") > 1 || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, fmt.Errorf("invalid byte size %q: want a number and an optional unit, such as 512MiB", s)
	}
	mult, ok := unitSize(suffix)
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q: unknown unit %q (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB...)", s, suffix)
	}
	// Exact arithmetic: 1.1GB is 1100000000 bytes, not 1099999999.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid byte size %q: not a whole number of bytes", s)
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("invalid byte size %q: larger than %d bytes", s, int64(math.MaxInt64))
	}
	return ByteSize(n.Int64()), nil
}

// String shows the size in the largest unit that holds it exactly: "10GiB",
// "512MB", "1023B". Negative sizes (invalid in config) show as bytes.
func (b ByteSize) String() string {
	for _, u := range sizeUnits {
		if b >= u.size && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText writes the String form, which ParseByteSize reads back.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses the forms ParseByteSize accepts.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
