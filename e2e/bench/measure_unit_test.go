package bench

import (
	"math"
	"testing"
)

func TestSlope(t *testing.T) {
	tests := []struct {
		name   string
		xs, ys []float64
		want   float64
	}{
		{"flat", []float64{1, 2, 3, 4}, []float64{500, 500, 500, 500}, 0},
		{"growing 100/s", []float64{10, 11, 12, 13}, []float64{0, 100, 200, 300}, 100},
		{"saw tooth around a level", []float64{1, 2, 3, 4, 5, 6}, []float64{0, 1000, 0, 1000, 0, 1000}, 1000.0 / 17.5 * 1.5},
		{"one sample", []float64{1}, []float64{7}, 0},
	}
	for _, tt := range tests {
		if got := slope(tt.xs, tt.ys); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: slope = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A saw tooth around a level has a slope within its standard error; a
// steady rise does not.
func TestFitStandardError(t *testing.T) {
	var xs, saw, rise []float64
	for i := range 20 {
		xs = append(xs, float64(i))
		saw = append(saw, float64(i%2)*1000)
		rise = append(rise, float64(i)*100+float64(i%2)*50)
	}
	if b, se := fit(xs, saw); b >= 2*se {
		t.Errorf("saw tooth: slope %v, standard error %v: want slope < 2 se", b, se)
	}
	if b, se := fit(xs, rise); b < 90 || b < 2*se {
		t.Errorf("rise: slope %v, standard error %v: want ~100 and > 2 se", b, se)
	}
}

func TestAlertEventID(t *testing.T) {
	tests := []struct {
		alert, want string
		ok          bool
	}{
		{"bench1-00000049-ResponseComplete-k8s-secrets-list-cluster-wide", "bench1-00000049-ResponseComplete", true},
		{"tetragon-9386f79d-rule", "", false},
	}
	for _, tt := range tests {
		got, ok := alertEventID(tt.alert)
		if got != tt.want || ok != tt.ok {
			t.Errorf("alertEventID(%q) = %q, %v; want %q, %v", tt.alert, got, ok, tt.want, tt.ok)
		}
	}
}

func TestStoredKey(t *testing.T) {
	tests := []struct {
		line, want string
		fails      bool
	}{
		{`{"event":{"id":"a-1-ResponseComplete"},"crowsnest":{"source":"k8s_audit"}}`, "a-1-ResponseComplete", false},
		{`{"event":{"id":"tetragon-abc"},"crowsnest":{"source":"tetragon"},"process":{"entity_id":"x-7"}}`, TetragonKey("x-7"), false},
		{`{"event":`, "", true},
	}
	for _, tt := range tests {
		got, err := storedKey([]byte(tt.line))
		if (err != nil) != tt.fails || got != tt.want {
			t.Errorf("storedKey(%s) = %q, %v; want %q (fails %v)", tt.line, got, err, tt.want, tt.fails)
		}
	}
}

func TestSafeIDs(t *testing.T) {
	if err := safeIDs([]string{"bench1-00000001-ResponseComplete", "b8648614-0000-4000-8000-0000000015df"}); err != nil {
		t.Error(err)
	}
	if err := safeIDs([]string{"x') OR 1=1 --"}); err == nil {
		t.Error("an id with a quote passed")
	}
}
