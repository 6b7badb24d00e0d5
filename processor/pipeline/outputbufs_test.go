package pipeline

import "testing"

// TestOutputBufs: a buffer handed back is reused, emptied; the free list is
// bounded in count and in buffer size, and an empty one is never kept.
func TestOutputBufs(t *testing.T) {
	b := newOutputBufs(2)
	first := b.get()
	if len(first) != 0 || cap(first) != outputBufSize {
		t.Fatalf("new buffer: len %d cap %d", len(first), cap(first))
	}
	first = append(first, "event one"...)
	b.put(first)
	again := b.get()
	if len(again) != 0 || &again[:1][0] != &first[0] {
		t.Fatalf("recycled buffer: len %d, same array %v", len(again), &again[:1][0] == &first[0])
	}
	b.put(make([]byte, 0, outputBufMax+1)) // too large: dropped
	b.put(nil)                             // nothing to keep
	if n := len(b.free); n != 0 {
		t.Fatalf("%d buffers kept, want 0", n)
	}
	for range 3 {
		b.put(make([]byte, 10))
	}
	if n := len(b.free); n != 2 {
		t.Fatalf("%d buffers kept, want the bound 2", n)
	}
}
