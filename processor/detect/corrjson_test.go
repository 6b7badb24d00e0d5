package detect

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sameAsEncodingJSON checks that appendGroup's bytes are valid JSON and read
// back (json.Unmarshal, as decode does) exactly as encoding/json's do.
func sameAsEncodingJSON(t *testing.T, g *corrGroup) {
	t.Helper()
	want, wantErr := json.Marshal(g)
	got, err := appendGroup(nil, g)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("appendGroup error %v, encoding/json error %v", err, wantErr)
	}
	if err != nil {
		return
	}
	if !json.Valid(got) {
		t.Fatalf("invalid JSON: %s", got)
	}
	var a, b corrGroup
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("reads back differently\nappendGroup:   %s\nencoding/json: %s", got, want)
	}
}

func TestAppendGroup(t *testing.T) {
	at := time.Date(2026, 3, 10, 9, 0, 0, 123456789, time.UTC)
	east := time.FixedZone("east", 5*3600+1800)
	odd := "quote\" backslash\\ nl\n cr\r tab\t nul\x00 bell\x07 <html>&amp; \u2028\u2029 é 世 bad\xff\xfe end"
	for _, c := range []struct {
		name string
		g    corrGroup
	}{
		{"empty", corrGroup{}},
		{"no hits, values", corrGroup{Values: []string{"ns", "pod"}, Latest: at}},
		{"empty hits", corrGroup{Hits: []corrHit{}, Values: []string{}, Latest: at}},
		{"hits and firings", corrGroup{
			Hits: []corrHit{
				{At: at, EventID: "e1", Base: 0},
				{At: at.Add(time.Second).In(east), EventID: "e2", Base: 1, Value: "v"},
				{At: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), EventID: "", Base: 12},
			},
			Fired:    []corrFired{{At: at, EventIDs: []string{"e0", "e1"}}, {At: at.Add(time.Minute), EventIDs: nil}},
			Values:   []string{"alice"},
			Latest:   at.Add(time.Second),
			Overflow: true,
		}},
		{"strings needing escapes", corrGroup{
			Hits:   []corrHit{{At: at, EventID: odd, Base: 0, Value: odd}},
			Fired:  []corrFired{{At: at, EventIDs: []string{odd}}},
			Values: []string{odd, "", strings.Repeat("x", 300)},
			Latest: at,
		}},
		{"year beyond RFC 3339 fails as encoding/json does", corrGroup{
			Hits:   []corrHit{{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), EventID: "e"}},
			Latest: at,
		}},
		{"negative year fails", corrGroup{Latest: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
	} {
		t.Run(c.name, func(t *testing.T) { sameAsEncodingJSON(t, &c.g) })
	}
}

// TestAppendGroupReusesHitEncodings: a window written, changed the ways
// observe, hold and decide change it, and written again still reads back as
// encoding/json's; each match is encoded once.
func TestAppendGroupReusesHitEncodings(t *testing.T) {
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	g := &corrGroup{Values: []string{"alice"}}
	for i := range 5 {
		g.Hits = append(g.Hits, corrHit{At: at.Add(time.Duration(i) * time.Second), EventID: "e" + string(rune('a'+i))})
	}
	sameAsEncodingJSON(t, g)
	for i, h := range g.Hits {
		if h.enc == "" {
			t.Fatalf("hit %d not kept encoded", i)
		}
	}
	g.Hits[0].enc = `{"poisoned":true}` // proves the kept encoding is what is written
	if got, _ := appendGroup(nil, g); !strings.Contains(string(got), "poisoned") {
		t.Fatalf("the kept encoding was not used: %s", got)
	}
	g.Hits[0].enc = ""
	g.Hits = append(g.Hits[:1], g.Hits[3:]...)                                                   // slide
	g.Hits = append([]corrHit{{At: at.Add(-time.Second), EventID: "early", Base: 1}}, g.Hits...) // insert in order
	g.Fired = append(g.Fired, corrFired{At: at, EventIDs: []string{"ea"}})
	g.Latest = at.Add(time.Hour)
	sameAsEncodingJSON(t, g)
}

func FuzzAppendGroup(f *testing.F) {
	f.Add("e1", "v", "alice", int64(1773133200123456789), 0, false)
	f.Add("\"\\\x00\xff", "\u2028", "<&>", int64(-62135596800000000000/1e9), 3, true)
	f.Fuzz(func(t *testing.T, id, value, group string, unixNano int64, base int, overflow bool) {
		at := time.Unix(0, unixNano).UTC()
		g := &corrGroup{
			Hits:     []corrHit{{At: at, EventID: id, Base: base, Value: value}, {At: at, EventID: group, Base: -base}},
			Fired:    []corrFired{{At: at, EventIDs: []string{id, value}}},
			Values:   []string{group, id},
			Latest:   at,
			Overflow: overflow,
		}
		sameAsEncodingJSON(t, g)
	})
}
