package fielderr

import (
	"errors"
	"testing"
)

func TestPrefix(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		err    error
		want   string
	}{
		{"nil", "topology", nil, ""},
		{"one", "topology", New("raw.max_bytes", "must be > 0"), "topology.raw.max_bytes: must be > 0"},
		{"joined", "nats", errors.Join(New("url", "bad"), New("tls.ca_file", "missing")), "nats.url: bad\nnats.tls.ca_file: missing"},
		{"index", "x", New("[2].name", "empty"), "x[2].name: empty"},
		{"plain error located at prefix", "embedded", errors.New("boom"), "embedded: boom"},
		{"empty prefix", "", New("a", "b"), "a: b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Prefix(tt.prefix, tt.err)
			if tt.want == "" {
				if got != nil {
					t.Fatalf("Prefix = %v, want nil", got)
				}
				return
			}
			if got == nil || got.Error() != tt.want {
				t.Fatalf("Prefix = %v, want %q", got, tt.want)
			}
		})
	}
	var fe *Error
	if !errors.As(Prefix("p", New("f", "x")), &fe) || fe.FieldPath() != "p.f" {
		t.Fatalf("errors.As after Prefix: %v", fe)
	}
}
