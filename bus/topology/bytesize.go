package topology

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes that config files write as "10GiB", "512MB",
// "1.5GiB" or a plain integer. It decodes from YAML and JSON through
// encoding.TextUnmarshaler, so the config loader needs no special case.
type ByteSize int64

// Common sizes.
const (
	Byte ByteSize = 1
	KiB           = 1024 * Byte
	MiB           = 1024 * KiB
	GiB           = 1024 * MiB
	TiB           = 1024 * GiB
)

var errByteSize = errors.New(`want a size such as "512MiB", "10GiB", "1GB" or a number of bytes`)

// ParseByteSize parses "10GiB", "10 GiB", "10G", "512MB", "1.5GiB", "1024".
// Binary units (KiB, MiB, GiB, TiB and the one-letter K, M, G, T) are powers of
// 1024; decimal units (KB, MB, GB, TB) powers of 1000. Units are
// case-insensitive. Negative sizes are rejected.
func ParseByteSize(s string) (ByteSize, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("size %q: %w", s, errByteSize)
	}
	i := 0
	for i < len(in) && (in[i] >= '0' && in[i] <= '9' || in[i] == '.') {
		i++
	}
	num, unit := in[:i], strings.ToLower(strings.TrimSpace(in[i:]))
	if num == "" {
		return 0, fmt.Errorf("size %q: %w", s, errByteSize)
	}
	var mult float64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kib":
		mult = float64(KiB)
	case "m", "mib":
		mult = float64(MiB)
	case "g", "gib":
		mult = float64(GiB)
	case "t", "tib":
		mult = float64(TiB)
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q: %w", s, unit, errByteSize)
	}
	if unit == "" || unit == "b" {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("size %q: %w", s, errByteSize)
		}
		return ByteSize(n), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, errByteSize)
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return ByteSize(v), nil
}

// String formats b in the largest binary unit that divides it exactly
// ("10GiB", "1536MiB", "1000B"), so a formatted size parses back unchanged.
func (b ByteSize) String() string {
	units := []struct {
		size ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}}
	for _, u := range units {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
