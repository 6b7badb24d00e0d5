package enrich

import (
	"testing"
	"time"
)

func TestLRU(t *testing.T) {
	var evicted []evictReason
	c := newLRU[int](3, time.Minute, func(r evictReason) { evicted = append(evicted, r) })
	now := int64(0)
	for i, k := range []string{"a", "b", "c"} {
		c.put(k, i, now)
	}
	if v, ok := c.get("a", now); !ok || *v != 0 {
		t.Fatalf("a: %v %v", v, ok)
	}
	c.put("d", 3, now) // b is the least recently used now
	if _, ok := c.get("b", now); ok {
		t.Error("b survived a full cache although least recently used")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := c.get(k, now); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	if len(evicted) != 1 || evicted[0] != evictCapacity {
		t.Errorf("evictions %v", evicted)
	}
	// Age: an entry dies ttl after it was last put, used or not.
	now += int64(time.Minute)
	if _, ok := c.get("a", now); ok {
		t.Error("a outlived its ttl")
	}
	if c.len() != 2 || evicted[len(evicted)-1] != evictExpired {
		t.Errorf("len %d, evictions %v", c.len(), evicted)
	}
	// Refreshing by put keeps an entry alive; a full cache drops an
	// expired tail first, counted as expired.
	c.put("c", 30, now)
	c.put("e", 4, now)
	c.put("f", 5, now) // full (c, e, f after d expires at the tail)
	if v, ok := c.get("c", now); !ok || *v != 30 {
		t.Errorf("c: %v %v", v, ok)
	}
	if _, ok := c.get("d", now); ok {
		t.Error("d outlived its ttl")
	}
	// Slots are reused: the item slice does not grow past max.
	for i := range 100 {
		c.put(string(rune('g'+i%20)), i, now)
	}
	if len(c.items) > 3 || c.len() != 3 {
		t.Errorf("%d items, %d keys", len(c.items), c.len())
	}
}
