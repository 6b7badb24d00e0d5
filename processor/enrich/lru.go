package enrich

import (
	"strings"
	"time"
)

// lru is a map bounded in entries and age: the least recently used entry
// goes when it is full, and an entry older than ttl is dead whether used or
// not (get reports a miss and removes it). Not safe for concurrent use: the
// Enricher's lock guards it. The list is intrusive over a slice of items
// addressed by index, so a steady cache allocates nothing per operation
// beyond new map keys.
type lru[V any] struct {
	max     int
	ttl     time.Duration
	index   map[string]int32 // key → item
	items   []item[V]
	head    int32 // most recently used; -1 when empty
	tail    int32 // least recently used
	free    []int32
	onEvict func(reason evictReason)
}

type item[V any] struct {
	key        string
	val        V
	expires    int64 // unix nanoseconds
	prev, next int32
}

type evictReason uint8

const (
	evictCapacity evictReason = iota
	evictExpired
)

func newLRU[V any](max int, ttl time.Duration, onEvict func(evictReason)) *lru[V] {
	return &lru[V]{max: max, ttl: ttl, index: make(map[string]int32, min(max, 4096)), head: -1, tail: -1, onEvict: onEvict}
}

func (c *lru[V]) len() int { return len(c.index) }

// get returns the value of key, making it the most recently used, or false
// when it is absent or expired (an expired entry is removed).
func (c *lru[V]) get(key string, now int64) (*V, bool) {
	i, ok := c.index[key]
	if !ok {
		return nil, false
	}
	it := &c.items[i]
	if now >= it.expires {
		c.remove(i)
		c.onEvict(evictExpired)
		return nil, false
	}
	c.moveToFront(i)
	return &it.val, true
}

// put stores a copy of val under key (a new key takes a copy of key: it may
// be a slice of a record), refreshes its age and returns a pointer to the
// stored value, valid until the next put or get.
func (c *lru[V]) put(key string, val V, now int64) *V {
	if i, ok := c.index[key]; ok {
		it := &c.items[i]
		it.val, it.expires = val, now+int64(c.ttl)
		c.moveToFront(i)
		return &it.val
	}
	if len(c.index) >= c.max {
		// Expired entries go first; otherwise the least recently used.
		reason := evictCapacity
		if now >= c.items[c.tail].expires {
			reason = evictExpired
		}
		c.remove(c.tail)
		c.onEvict(reason)
	}
	var i int32
	if n := len(c.free); n > 0 {
		i, c.free = c.free[n-1], c.free[:n-1]
	} else {
		c.items = append(c.items, item[V]{})
		i = int32(len(c.items) - 1)
	}
	key = strings.Clone(key)
	c.items[i] = item[V]{key: key, val: val, expires: now + int64(c.ttl), prev: -1, next: c.head}
	if c.head >= 0 {
		c.items[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
	c.index[key] = i
	return &c.items[i].val
}

func (c *lru[V]) remove(i int32) {
	it := &c.items[i]
	c.unlink(i)
	delete(c.index, it.key)
	var zero V
	it.key, it.val = "", zero // drop references for the collector
	c.free = append(c.free, i)
}

func (c *lru[V]) unlink(i int32) {
	it := &c.items[i]
	if it.prev >= 0 {
		c.items[it.prev].next = it.next
	} else {
		c.head = it.next
	}
	if it.next >= 0 {
		c.items[it.next].prev = it.prev
	} else {
		c.tail = it.prev
	}
	it.prev, it.next = -1, -1
}

func (c *lru[V]) moveToFront(i int32) {
	if c.head == i {
		return
	}
	c.unlink(i)
	it := &c.items[i]
	it.next = c.head
	if c.head >= 0 {
		c.items[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}
