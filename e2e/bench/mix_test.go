package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Every generated record is JSON with a fresh id in the field its mapper
// reads, in the mix's proportions.
func TestMixFreshIDs(t *testing.T) {
	m, err := LoadMix("t1", "../../collectors/replay/samples", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	keys := map[string]bool{}
	kinds := map[Kind]int{}
	probes := 0
	for range 2000 {
		r, err := m.Next(now)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(r.Line, &doc); err != nil {
			t.Fatalf("%v: %s", err, r.Line)
		}
		if keys[r.Key] {
			t.Fatalf("key %s generated twice", r.Key)
		}
		keys[r.Key] = true
		kinds[r.Kind]++
		if strings.Contains(string(r.Line), "2026-03-10") && r.Kind != Tetragon {
			// Tetragon's process start times stay as sampled; the others' times are now.
			if r.Kind == Audit && (strings.Contains(string(r.Line), `"stageTimestamp":"2026-03-10`) || strings.Contains(string(r.Line), `"requestReceivedTimestamp":"2026-03-10`)) {
				t.Errorf("audit record kept a sample timestamp: %s", r.Line)
			}
		}
		switch r.Kind {
		case Audit:
			if doc["auditID"] == nil || !strings.HasPrefix(r.ID, doc["auditID"].(string)+"-") {
				t.Errorf("audit id %s does not come from auditID %v", r.ID, doc["auditID"])
			}
			if doc["stageTimestamp"] != "2026-11-27T07:00:00.000000Z" {
				t.Errorf("stageTimestamp = %v", doc["stageTimestamp"])
			}
			if r.Alert {
				probes++
			}
		case Falco:
			if doc["uuid"] != r.ID || doc["time"] != "2026-11-27T07:00:00.000000Z" {
				t.Errorf("falco uuid %v time %v, want %s and now", doc["uuid"], doc["time"], r.ID)
			}
			// The normalizer prefers evt.time: it must be now too.
			if of, ok := doc["output_fields"].(map[string]any); ok && of["evt.time"] != nil && of["evt.time"] != float64(now.UnixNano()) {
				t.Errorf("falco evt.time %v, want %d", of["evt.time"], now.UnixNano())
			}
		case Tetragon:
			if !strings.Contains(string(r.Line), `"exec_id":"`+strings.TrimPrefix(r.Key, "tetragon:")+`"`) {
				t.Errorf("tetragon record lacks its exec_id %s", r.Key)
			}
		}
	}
	if kinds[Audit] != 1600 || kinds[Tetragon] != 300 || kinds[Falco] != 100 || probes != 32 {
		t.Errorf("kinds %v, alert probes %d; want 1600/300/100 and 32", kinds, probes)
	}
}
