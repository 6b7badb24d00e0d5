package sink

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPermanent(t *testing.T) {
	base := errors.New("mapping conflict")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", Permanent(nil), false},
		{"plain", base, false},
		{"permanent", Permanent(base), true},
		{"wrapped permanent", fmt.Errorf("index doc: %w", Permanent(base)), true},
		{"batch with a permanent item", NewBatchError().Failed(0, Permanent(base)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent = %v, want %v", got, tt.want)
			}
		})
	}
	if !errors.Is(Permanent(base), base) {
		t.Error("Permanent hides the cause from errors.Is")
	}
}

func TestBatchError(t *testing.T) {
	cause := errors.New("429 too many requests")
	be := NewBatchError().Failed(2, cause).Failed(5, Permanent(errors.New("bad doc"))).Failed(7, nil)
	if be.Len() != 3 {
		t.Fatalf("Len = %d", be.Len())
	}
	items := be.Items()
	if items[0].Index != 2 || items[1].Index != 5 || !IsPermanent(items[1].Err) || items[2].Err == nil {
		t.Fatalf("items = %+v", items)
	}
	if !errors.Is(be, cause) {
		t.Error("errors.Is does not see an item's error")
	}
	var err error = fmt.Errorf("write: %w", be)
	var got *BatchError
	if !errors.As(err, &got) || got != be {
		t.Error("errors.As does not find a wrapped BatchError")
	}
	if msg := be.Error(); !strings.Contains(msg, "3 records failed") || !strings.Contains(msg, "record 2") {
		t.Errorf("Error() = %q", msg)
	}
}

func TestBackoff(t *testing.T) {
	const initial, maxD time.Duration = 100, 1000
	for n := 1; n <= 8; n++ {
		nominal := min(initial<<(n-1), maxD)
		for range 200 {
			d := backoff(n, initial, maxD)
			if d < nominal/2 || d > nominal {
				t.Fatalf("backoff(%d) = %d, want within [%d, %d]", n, d, nominal/2, nominal)
			}
		}
	}
	if d := backoff(1000, initial, maxD); d > maxD {
		t.Fatalf("backoff grows past its cap: %d", d)
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\tc", 100); got != "a b c" {
		t.Errorf("oneLine = %q", got)
	}
	if got := oneLine("ééé", 3); got != "é" {
		t.Errorf("oneLine cut inside a rune: %q", got)
	}
}
