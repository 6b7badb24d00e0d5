package pipeline

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
)

// TestOutputMsgs: a message handed back is reused with its buffer emptied
// and its id and subject replaced; the free list is bounded in count and in
// buffer size, and a message whose headers changed is never kept.
func TestOutputMsgs(t *testing.T) {
	o := newOutputMsgs(2, []string{"k8s_audit"})
	first := o.get("subj.a", "id-1")
	if len(first.Data) != 0 || cap(first.Data) != outputBufSize {
		t.Fatalf("new message: len %d cap %d", len(first.Data), cap(first.Data))
	}
	if got := first.Header.Get(headers.MsgID); got != "id-1" || first.Header.Get(headers.Source) != "k8s_audit" {
		t.Fatalf("new message headers %v", first.Header)
	}
	first.Data = append(first.Data, "event one"...)
	o.put(first)
	again := o.get("subj.b", "id-2")
	if again != first || len(again.Data) != 0 || again.Subject != "subj.b" {
		t.Fatalf("recycled message: same %v, len %d, subject %q", again == first, len(again.Data), again.Subject)
	}
	if got := again.Header.Get(headers.MsgID); got != "id-2" || again.Header.Get(headers.Source) != "k8s_audit" || len(again.Header) != 2 {
		t.Fatalf("recycled message headers %v", again.Header)
	}

	large := o.get("s", "x")
	large.Data = make([]byte, 0, outputBufMax+1)
	extra := o.get("s", "y")
	extra.Header.Set("Nats-Expected-Stream", "E") // not as get made it
	replied := o.get("s", "z")
	replied.Reply = "inbox"
	for _, m := range []*nats.Msg{large, extra, replied, nil, {}} {
		o.put(m)
	}
	if n := len(o.free); n != 0 {
		t.Fatalf("%d messages kept, want 0", n)
	}
	for range 3 {
		o.put(o.get("s", "id"))
		o.put(&nats.Msg{Data: make([]byte, 1), Header: outputHeader("id", o.source)})
	}
	if n := len(o.free); n != 2 {
		t.Fatalf("%d messages kept, want the bound 2", n)
	}
}
