package harness

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCensusCompare(t *testing.T) {
	tests := []struct {
		name     string
		found    []string
		expected []string
		want     Tally
		ok       bool
	}{
		{"exactly once", []string{"a", "b", "c"}, []string{"a", "b", "c"}, Tally{Expected: 3, Records: 3, Unique: 3}, true},
		{"lost", []string{"a", "c"}, []string{"a", "b", "c"}, Tally{Expected: 3, Records: 2, Unique: 2, Lost: 1}, false},
		{"duplicate", []string{"a", "b", "b", "b", "c"}, []string{"a", "b", "c"}, Tally{Expected: 3, Records: 5, Unique: 3, Duplicates: 2}, false},
		{"unexpected", []string{"a", "b", "x"}, []string{"a", "b"}, Tally{Expected: 2, Records: 3, Unique: 3, Unexpected: 1}, false},
		{"lost and duplicated hide each other in a plain count", []string{"a", "a"}, []string{"a", "b"}, Tally{Expected: 2, Records: 2, Unique: 1, Lost: 1, Duplicates: 1}, false},
		{"nothing", nil, nil, Tally{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCensus("test")
			for _, id := range tt.found {
				c.Add(id)
			}
			got := c.Compare(tt.expected)
			got.Where, got.Samples = "", nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Compare = %+v, want %+v", got, tt.want)
			}
			if got.OK() != tt.ok {
				t.Errorf("OK() = %v, want %v", got.OK(), tt.ok)
			}
		})
	}
}

func TestCensusUnreadableIsNotOK(t *testing.T) {
	c := NewCensus("test")
	c.Add("a")
	c.Unreadable++
	c.Records++
	if tally := c.Compare([]string{"a"}); tally.OK() {
		t.Errorf("a census with an unreadable record passed: %s", tally)
	}
}

// The generated log holds the valid records, the bad lines (each with its
// marker) and the alerting records the spec asks for, and every id is
// unique.
func TestWriteAuditLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	log, err := WriteAuditLog(path, AuditSpec{Prefix: "t1", Records: 1000, BadEvery: 300, AlertEvery: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(log.EventIDs) != 1000 || len(log.Bad) != 3 || log.AlertRecords != 10 {
		t.Fatalf("ids %d, bad %d, alerting %d; want 1000, 3, 10", len(log.EventIDs), len(log.Bad), log.AlertRecords)
	}
	seen := map[string]bool{}
	for _, id := range log.EventIDs {
		if seen[id] {
			t.Fatalf("id %s generated twice", id)
		}
		seen[id] = true
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var valid, bad, secrets int
	for sc.Scan() {
		line := sc.Text()
		var ev struct {
			AuditID   string `json:"auditID"`
			ObjectRef struct {
				Resource string `json:"resource"`
			} `json:"objectRef"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil || ev.AuditID == "" || strings.Contains(line, "-bad-") {
			if !strings.Contains(line, log.Bad[bad]) {
				t.Errorf("bad line %d lacks marker %s: %s", bad, log.Bad[bad], line)
			}
			bad++
			continue
		}
		if !seen[ev.AuditID+"-ResponseComplete"] {
			t.Errorf("line with auditID %s has no expected event id", ev.AuditID)
		}
		if ev.ObjectRef.Resource == "secrets" {
			secrets++
		}
		valid++
	}
	if valid != 1000 || bad != 3 || secrets != 10 {
		t.Errorf("file: %d valid, %d bad, %d alerting lines; want 1000, 3, 10", valid, bad, secrets)
	}
}
