package topology

import (
	"encoding/json"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr bool
	}{
		{"1024", 1024, false},
		{"0", 0, false},
		{"10GiB", 10 * GiB, false},
		{"10 GiB", 10 * GiB, false},
		{"10gib", 10 * GiB, false},
		{"10Gi", 10 * GiB, false},
		{"512MB", 512 * MB, false},
		{"1.5GiB", GiB + 512*MiB, false},
		{"1.1GB", 1100000000, false},
		{"1KiB", 1024, false},
		{"2TB", 2 * TB, false},
		{"  7B  ", 7, false},
		{"10G", 0, true}, // ambiguous
		{"10K", 0, true},
		{"", 0, true},
		{"GiB", 0, true},
		{"-1", 0, true},
		{"1.5B", 0, true}, // not whole bytes
		{"1..5GiB", 0, true},
		{".5GiB", 0, true},
		{"10 parsecs", 0, true},
		{"9999999PiB", 0, true}, // overflows int64
		{string(make([]byte, 100)), 0, true},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseByteSize(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestByteSizeStringRoundTrip(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{10 * GiB, "10GiB"},
		{1536 * MiB, "1536MiB"},
		{512 * MB, "512MB"},
		{1023, "1023B"},
		{0, "0B"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("String(%d) = %q, want %q", int64(tt.in), got, tt.want)
		}
		back, err := ParseByteSize(tt.in.String())
		if err != nil || back != tt.in {
			t.Errorf("round trip %d: got %d, %v", int64(tt.in), back, err)
		}
	}
	b, err := json.Marshal(struct{ S ByteSize }{10 * GiB})
	if err != nil || string(b) != `{"S":"10GiB"}` {
		t.Errorf("json = %s, %v", b, err)
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"10GiB", "1.5 MB", "", "-1", "1e9", "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, negative", s, v)
		}
		back, err := ParseByteSize(v.String())
		if err != nil || back != v {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, v, v.String(), back, err)
		}
	})
}
