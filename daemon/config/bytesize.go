package config

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// A ByteSize is a number of bytes written the way people write them: "1024",
// "512MB" (decimal, 10^6), "10GiB" (binary, 2^30), "1.5GiB". Units are
// B, KB, MB, GB, TB, PB, EB and KiB, MiB, GiB, TiB, PiB, EiB, in any case,
// and the Kubernetes forms Ki, Mi, Gi, Ti, Pi, Ei; a space may stand between
// number and unit. A fraction must come to a whole number of bytes. A bare K,
// M or G is refused: it is ambiguous between 1000 and 1024.
type ByteSize uint64

// Binary and decimal multiples, for defaults in code: 512 * config.MiB.
const (
	B   ByteSize = 1
	KiB          = 1024 * B
	MiB          = 1024 * KiB
	GiB          = 1024 * MiB
	TiB          = 1024 * GiB
	PiB          = 1024 * TiB
	EiB          = 1024 * PiB
)

// Decimal multiples.
const (
	KB ByteSize = 1000
	MB ByteSize = 1000 * KB
	GB ByteSize = 1000 * MB
	TB ByteSize = 1000 * GB
	PB ByteSize = 1000 * TB
	EB ByteSize = 1000 * PB
)

type unit struct {
	name string
	size ByteSize
}

// units, largest first, binary before decimal at each magnitude: the order in
// which String picks the unit that shows a size exactly.
var units = [...]unit{
	{"EiB", EiB}, {"EB", EB}, {"PiB", PiB}, {"PB", PB}, {"TiB", TiB}, {"TB", TB},
	{"GiB", GiB}, {"GB", GB}, {"MiB", MiB}, {"MB", MB}, {"KiB", KiB}, {"KB", KB},
}

func unitSize(s string) (ByteSize, bool) {
	s = strings.ToLower(s)
	switch s {
	case "", "b":
		return B, true
	case "ki", "mi", "gi", "ti", "pi", "ei":
		s += "b"
	}
	for _, u := range units {
		if strings.ToLower(u.name) == s {
			return u.size, true
		}
	}
	return 0, false
}

// ParseByteSize parses s as described on [ByteSize].
func ParseByteSize(s string) (ByteSize, error) {
	orig := s
	if len(s) > 64 {
		return 0, fmt.Errorf("invalid byte size %.20q...: too long", s)
	}
	s = strings.TrimSpace(s)
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(s)
	}
	num, suffix := s[:end], strings.TrimSpace(s[end:])
	if num == "" || strings.Count(num, ".") > 1 || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, fmt.Errorf("invalid byte size %q: want a number and an optional unit, such as 512MiB", orig)
	}
	mult, ok := unitSize(suffix)
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q: unknown unit %q (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB...)", orig, suffix)
	}
	// Exact rational arithmetic: 1.1GB is 1100000000 bytes, not 1099999999.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q", orig)
	}
	r.Mul(r, new(big.Rat).SetUint64(uint64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid byte size %q: not a whole number of bytes", orig)
	}
	n := r.Num()
	if !n.IsUint64() {
		return 0, fmt.Errorf("invalid byte size %q: larger than %d bytes", orig, uint64(math.MaxUint64))
	}
	return ByteSize(n.Uint64()), nil
}

// String shows the size in the largest unit that holds it exactly: "10GiB",
// "512MB", "1023B".
func (b ByteSize) String() string {
	for _, u := range units {
		if b >= u.size && b%u.size == 0 {
			return strconv.FormatUint(uint64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatUint(uint64(b), 10) + "B"
}

// MarshalText writes the String form, which ParseByteSize reads back.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses the forms ParseByteSize accepts; YAML and the
// environment go through it.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
