package config_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    config.ByteSize
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "1024B", want: 1024},
		{in: "1 KB", want: 1000},
		{in: "1KiB", want: 1024},
		{in: "512MB", want: 512_000_000},
		{in: "512mb", want: 512_000_000},
		{in: "512Mi", want: 512 << 20},
		{in: "10GiB", want: 10 << 30},
		{in: "10gib", want: 10 << 30},
		{in: "1.5GiB", want: 3 << 29},
		{in: "1.1GB", want: 1_100_000_000},
		{in: "2TiB", want: 2 << 40},
		{in: "3PB", want: 3e15},
		{in: "15EiB", want: 15 << 60},
		{in: "  64 KiB  ", want: 64 << 10},
		{in: "18446744073709551615", want: math.MaxUint64},
		{in: "", wantErr: true},
		{in: "GiB", wantErr: true},
		{in: "10XB", wantErr: true},
		{in: "10G", wantErr: true}, // ambiguous: 10^9 or 2^30?
		{in: "10K", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "1.5", wantErr: true},    // half a byte
		{in: "0.1KiB", wantErr: true}, // 102.4 bytes
		{in: "1.", wantErr: true},
		{in: ".5KB", wantErr: true},
		{in: "1.2.3MB", wantErr: true},
		{in: "1e3", wantErr: true},
		{in: "16EiB", wantErr: true}, // 2^64
		{in: "18446744073709551616", wantErr: true},
		{in: "1 2 MB", wantErr: true},
		{in: "1000000000000000000000000000000000000000000000000000000000000000000000", wantErr: true},
	}
	for _, tt := range tests {
		got, err := config.ParseByteSize(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseByteSize(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   config.ByteSize
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1023, "1023B"},
		{1000, "1KB"},
		{1024, "1KiB"},
		{1536, "1536B"},
		{1_024_000, "1000KiB"},
		{512 * config.MB, "512MB"},
		{10 * config.GiB, "10GiB"},
		{config.EiB, "1EiB"},
		{math.MaxUint64, "18446744073709551615B"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", uint64(tt.in), got, tt.want)
		}
		back, err := config.ParseByteSize(tt.want)
		if err != nil || back != tt.in {
			t.Errorf("round trip %q = %d, %v", tt.want, back, err)
		}
	}
}

func TestByteSizeEncodings(t *testing.T) {
	var c fileSinkConfig
	for in, want := range map[string]config.ByteSize{
		"max_bytes: 1024": 1024, "max_bytes: 10GiB": 10 * config.GiB, `max_bytes: "512MB"`: 512 * config.MB,
	} {
		if err := config.Decode([]byte(in), "c.yaml", &c, config.WithEnviron(nil)); err != nil || c.MaxBytes != want {
			t.Errorf("%s: got %d, %v; want %d", in, c.MaxBytes, err, want)
		}
	}
	b, err := json.Marshal(struct{ Size config.ByteSize }{3 * config.MiB})
	if err != nil || string(b) != `{"Size":"3MiB"}` {
		t.Errorf("json = %s, %v", b, err)
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "10GiB", "1.5 mb", "18446744073709551615", "1.0000000001KiB", "9EiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := config.ParseByteSize(s)
		if err != nil {
			return
		}
		back, err := config.ParseByteSize(n.String())
		if err != nil || back != n {
			t.Fatalf("%q parsed to %d, which prints as %q and parses back to %d, %v", s, n, n.String(), back, err)
		}
	})
}
