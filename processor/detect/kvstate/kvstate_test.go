package kvstate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/detect"
	"github.com/crowsnest-siem/crowsnest/processor/detect/kvstate"
)

var _ detect.StateStore = (*kvstate.Store)(nil)

// bucket starts an embedded server holding the crowsnest-state bucket as
// bus/topology declares it (history 3, so Delete must remove every revision).
func bucket(t *testing.T) (jetstream.JetStream, *kvstate.Store) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	cfg := topology.NewDefaultConfig()
	cfg.State.History = 3
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, topology.StateBucketConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	return js, kvstate.New(js)
}

func TestStore(t *testing.T) {
	js, s := bucket(t)
	ctx := t.Context()
	if v, err := s.Get(ctx, "correlation.r.missing"); v != nil || err != nil {
		t.Fatalf("missing key: %q, %v; want nil, nil", v, err)
	}
	for _, k := range []string{"correlation.a.1", "correlation.a.2", "correlation.b.1", "other.x"} {
		for _, v := range []string{"v1", "v2"} {
			if err := s.Put(ctx, k, []byte(k+v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v, err := s.Get(ctx, "correlation.a.1"); string(v) != "correlation.a.1v2" || err != nil {
		t.Fatalf("get: %q, %v", v, err)
	}
	keys, err := s.Keys(ctx, "correlation.a.")
	slices.Sort(keys)
	if err != nil || !slices.Equal(keys, []string{"correlation.a.1", "correlation.a.2"}) {
		t.Fatalf("keys: %v, %v", keys, err)
	}
	for _, k := range []string{"correlation.a.1", "correlation.a.2", "correlation.b.1", "other.x"} {
		if err := s.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "correlation.never.written"); err != nil {
		t.Fatalf("deleting an absent key: %v", err)
	}
	if v, err := s.Get(ctx, "correlation.a.1"); v != nil || err != nil {
		t.Fatalf("deleted key: %q, %v; want nil, nil", v, err)
	}
	if keys, err := s.Keys(ctx, ""); len(keys) != 0 || err != nil {
		t.Fatalf("keys after delete: %v, %v", keys, err)
	}
	// Nothing stays behind: no revision, no delete marker.
	stream, err := js.Stream(ctx, topology.StateBucketStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("%d messages left in %s after deleting every key", info.State.Msgs, topology.StateBucketStream)
	}
}

func TestStoreRejectsBadKeys(t *testing.T) {
	_, s := bucket(t)
	for _, k := range []string{"", "a.*", "a.>", "a b"} {
		if err := s.Delete(t.Context(), k); err == nil {
			t.Errorf("Delete(%q): no error", k)
		}
	}
	if _, err := s.Keys(t.Context(), "correlation"); err == nil {
		t.Error("Keys with a prefix not ending in a dot: no error")
	}
}

func TestStoreWithoutBucket(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	s := kvstate.New(js)
	if err := s.Put(t.Context(), "k", []byte("v")); err == nil {
		t.Fatal("Put without the bucket: no error")
	}
}

// collected returns a context under which Put is asynchronous, its Writes,
// and the writes it collected.
func collected(ctx context.Context) (context.Context, *kvstate.Writes, *[]*kvstate.Write) {
	var got []*kvstate.Write
	ws := kvstate.NewWrites(func(w *kvstate.Write) { got = append(got, w) })
	return kvstate.WithWrites(ctx, ws), ws, &got
}

func waitWrites(t *testing.T, ws []*kvstate.Write) []error {
	t.Helper()
	var errs []error
	for _, w := range ws {
		select {
		case <-w.Done():
			errs = append(errs, w.Err())
		case <-time.After(10 * time.Second):
			t.Fatal("a write never completed")
		}
	}
	return errs
}

// TestStoreAsyncWrites: Puts under WithWrites return at once and those of
// one key until a flush become one write of the last value; reads, listings
// and purges of a key see every Put made before them, and no write lands
// after a purge.
func TestStoreAsyncWrites(t *testing.T) {
	js, s := bucket(t)
	ctx := t.Context()
	actx, ws, got := collected(ctx)
	const n = 200
	for i := range n {
		for _, k := range []string{"correlation.a.1", "correlation.a.2"} {
			if err := s.Put(actx, k, fmt.Appendf(nil, "%s-%d", k, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(*got) != 2*n {
		t.Fatalf("%d writes collected, want %d (one per Put)", len(*got), 2*n)
	}
	if (*got)[0] != (*got)[2*n-2] {
		t.Fatal("Puts of one key before a flush were not coalesced into one write")
	}
	// Read at once, without a flush: the last Put is what it sees.
	if v, err := s.Get(ctx, "correlation.a.1"); string(v) != fmt.Sprintf("correlation.a.1-%d", n-1) || err != nil {
		t.Fatalf("get after async puts: %q, %v", v, err)
	}
	// Purge at once: nothing written before it survives it.
	if err := s.Delete(ctx, "correlation.a.2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(actx, "correlation.b.1", []byte("b")); err != nil {
		t.Fatal(err)
	}
	keys, err := s.Keys(ctx, "correlation.")
	slices.Sort(keys)
	if err != nil || !slices.Equal(keys, []string{"correlation.a.1", "correlation.b.1"}) {
		t.Fatalf("keys: %v, %v", keys, err)
	}
	if err := s.Put(actx, "correlation.a.1", []byte("last")); err != nil {
		t.Fatal(err)
	}
	ws.Flush()
	for i, err := range waitWrites(t, *got) {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	kv, err := js.KeyValue(ctx, topology.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "correlation.a.2"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("purged key after its writes completed: %v, want not found", err)
	}
	// 201 Puts, one read in between: two writes, the last one last. What
	// an async write stores is what KeyValue.Put would: the KV API reads it.
	hist, err := kv.History(ctx, "correlation.a.1")
	if err != nil || len(hist) != 2 || string(hist[1].Value()) != "last" {
		t.Fatalf("history of a coalesced key: %d revisions, %v", len(hist), err)
	}
	if err := s.Put(actx, "a.*", []byte("x")); err == nil {
		t.Fatal("async Put of a wildcard key: no error")
	}
}

// TestStoreAsyncWriteFails: a write the server refuses is reported by its
// Write, not lost: the processor then redelivers the input that made it.
func TestStoreAsyncWriteFails(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	s := kvstate.New(js) // no bucket: nothing stores the write
	actx, ws, got := collected(t.Context())
	if err := s.Put(actx, "correlation.a.1", []byte("v")); err != nil {
		t.Fatalf("async put: %v (its failure belongs to the Write)", err)
	}
	ws.Flush()
	if errs := waitWrites(t, *got); len(errs) != 1 || errs[0] == nil {
		t.Fatalf("write without a bucket: errors %v, want one", errs)
	}
}
