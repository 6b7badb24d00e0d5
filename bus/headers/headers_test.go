package headers

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestMsgIDMatchesJetStream(t *testing.T) {
	if MsgID != jetstream.MsgIDHeader {
		t.Fatalf("MsgID = %q, jetstream.MsgIDHeader = %q", MsgID, jetstream.MsgIDHeader)
	}
}

func TestTimeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"utc nanos", time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC), "2025-03-04T05:06:07.123456789Z"},
		{"zone converted to utc", time.Date(2025, 3, 4, 7, 6, 7, 0, time.FixedZone("x", 2*3600)), "2025-03-04T05:06:07Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FormatTime(tt.in)
			if got != tt.want {
				t.Fatalf("FormatTime = %q, want %q", got, tt.want)
			}
			back, err := ParseTime(got)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(tt.in) {
				t.Fatalf("ParseTime = %v, want %v", back, tt.in)
			}
		})
	}
	if _, err := ParseTime("yesterday"); err == nil {
		t.Fatal("ParseTime(yesterday): want error")
	}
}
