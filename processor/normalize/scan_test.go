package normalize

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	tests := []struct {
		in    string
		depth int
		want  Reason
	}{
		{`{}`, 64, ""},
		{`[]`, 64, ""},
		{` {"a": [1, -2.5e+3, 0, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9"]} `, 64, ""},
		{`"top-level string"`, 64, ""},
		{`0`, 64, ""},
		{`{"a":{"b":{"c":1}}}`, 3, ""},
		{`{"a":{"b":{"c":1}}}`, 2, ReasonTooDeep},
		{`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, 64, ReasonTooDeep},
		{`{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`, 64, ""}, // brackets in strings do not nest
		{``, 64, ReasonInvalidJSON},
		{`   `, 64, ReasonInvalidJSON},
		{`not json`, 64, ReasonInvalidJSON},
		{`{"a":1}{"b":2}`, 64, ReasonInvalidJSON},
		{`{"a":1,}`, 64, ReasonInvalidJSON},
		{`[1,]`, 64, ReasonInvalidJSON},
		{`{"a" 1}`, 64, ReasonInvalidJSON},
		{`{a:1}`, 64, ReasonInvalidJSON},
		{`{"a":01}`, 64, ReasonInvalidJSON},
		{`{"a":1.}`, 64, ReasonInvalidJSON},
		{`{"a":-}`, 64, ReasonInvalidJSON},
		{`{"a":1e}`, 64, ReasonInvalidJSON},
		{`{"a":tru}`, 64, ReasonInvalidJSON},
		{`{"a":"\x"}`, 64, ReasonInvalidJSON},
		{`{"a":"\u12"}`, 64, ReasonInvalidJSON},
		{"{\"a\":\"\x00\"}", 64, ReasonInvalidJSON}, // raw NUL in a string
		{"{\"a\":1}\x00", 64, ReasonInvalidJSON},    // NUL after the value
		{"{\"a\":\"tab\there\"}", 64, ReasonInvalidJSON},
		{`{"a":"unterminated}`, 64, ReasonInvalidJSON},
		{`{"a":[1,2}`, 64, ReasonInvalidJSON},
		{`{"a":1]`, 64, ReasonInvalidJSON},
		{`]`, 64, ReasonInvalidJSON},
		{`{"a":"\u0000"}`, 64, ""}, // an escaped NUL is valid JSON
	}
	for _, tt := range tests {
		got, _ := checkJSON([]byte(tt.in), tt.depth)
		if got != tt.want {
			t.Errorf("checkJSON(%.60q, %d) = %q, want %q", tt.in, tt.depth, got, tt.want)
		}
		if gotS, _ := checkJSON(tt.in, tt.depth); gotS != got {
			t.Errorf("string and []byte scans disagree on %.60q", tt.in)
		}
	}
}

func TestCheckJSONDepthBomb(t *testing.T) {
	bomb := strings.Repeat("[", 1<<20)
	reason, at := checkJSON(bomb, 64)
	if reason != ReasonTooDeep || at != 64 {
		t.Fatalf("got %q at %d, want too_deep at 64", reason, at)
	}
	objBomb := strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000)
	if reason, _ := checkJSON(objBomb, 1000); reason != "" {
		t.Fatalf("depth 1000 with max 1000: %q", reason)
	}
	if reason, _ := checkJSON(objBomb, 999); reason != ReasonTooDeep {
		t.Fatalf("depth 1000 with max 999: %q", reason)
	}
}

// FuzzCheckJSON checks the scanner against encoding/json: same verdict on
// validity for every input shallower than the limit.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[1,"a",{"b":null}]`, `{"a":-0.5E-3}`, `"\ud800"`, `[`, `{"a":}`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reason, _ := checkJSON(data, maxDepthCeiling)
		if reason == ReasonTooDeep {
			return
		}
		if want := json.Valid(data); (reason == "") != want {
			t.Fatalf("checkJSON says %q, encoding/json says valid=%v, for %q", reason, want, data)
		}
	})
}
