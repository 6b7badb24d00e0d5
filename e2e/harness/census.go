package harness

import (
	"fmt"
	"slices"
	"strings"
)

// Census counts how many times each id was found in one place (a stream, the
// file sink, a store).
type Census struct {
	Where   string
	Records int            // records read, with their duplicates
	Count   map[string]int // id → how many records carry it
	// Unreadable counts records whose id could not be read.
	Unreadable int
}

// NewCensus starts an empty census of where.
func NewCensus(where string) *Census {
	return &Census{Where: where, Count: map[string]int{}}
}

// Add counts one record with id.
func (c *Census) Add(id string) {
	c.Records++
	c.Count[id]++
}

// Tally compares a census with the ids that were generated.
type Tally struct {
	Where      string
	Expected   int // ids generated
	Records    int // records found
	Unique     int // distinct ids found
	Lost       int // generated, not found
	Duplicates int // records beyond the first of an id
	Unexpected int // ids found that were never generated
	Unreadable int
	Samples    []string // a few offending ids, for the report
}

// Compare tallies c against the generated ids.
func (c *Census) Compare(expected []string) Tally {
	t := Tally{Where: c.Where, Expected: len(expected), Records: c.Records, Unique: len(c.Count), Unreadable: c.Unreadable}
	want := make(map[string]bool, len(expected))
	for _, id := range expected {
		want[id] = true
		if c.Count[id] == 0 {
			t.Lost++
			t.sample("lost " + id)
		}
	}
	ids := make([]string, 0, len(c.Count))
	for id := range c.Count {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		n := c.Count[id]
		if n > 1 {
			t.Duplicates += n - 1
			t.sample(fmt.Sprintf("duplicate %s ×%d", id, n))
		}
		if !want[id] {
			t.Unexpected++
			t.sample("unexpected " + id)
		}
	}
	return t
}

func (t *Tally) sample(s string) {
	if len(t.Samples) < 10 {
		t.Samples = append(t.Samples, s)
	}
}

// OK reports exactly once: nothing lost, duplicated, unexpected or unreadable.
func (t Tally) OK() bool {
	return t.Lost == 0 && t.Duplicates == 0 && t.Unexpected == 0 && t.Unreadable == 0 && t.Records == t.Expected
}

func (t Tally) String() string {
	s := fmt.Sprintf("%s: expected=%d records=%d unique=%d lost=%d duplicates=%d unexpected=%d",
		t.Where, t.Expected, t.Records, t.Unique, t.Lost, t.Duplicates, t.Unexpected)
	if t.Unreadable > 0 {
		s += fmt.Sprintf(" unreadable=%d", t.Unreadable)
	}
	if len(t.Samples) > 0 {
		s += " [" + strings.Join(t.Samples, "; ") + "]"
	}
	return s
}
