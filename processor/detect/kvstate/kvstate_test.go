package kvstate_test

import (
	"context"
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
