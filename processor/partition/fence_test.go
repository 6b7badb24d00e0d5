package partition_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/partition"
)

// A claim's fence is valid while the claim is held and renewed, through
// many leases; Release invalidates it at once.
func TestFenceFollowsTheClaim(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	a := startReplica(t, srv, "a", 2)
	waitCover(t, 2, a)
	for p := range 2 {
		if !a.m.Fence(p).Valid() {
			t.Fatalf("partition %d claimed, fence not valid", p)
		}
	}
	first := a.m.Fence(0).Expires()
	time.Sleep(3 * time.Second) // two leases: only renewals keep it valid
	if !a.m.Fence(0).Valid() || !a.m.Fence(0).Expires().After(first) {
		t.Fatalf("fence after two leases: valid %v, expires %s (first %s)", a.m.Fence(0).Valid(), a.m.Fence(0).Expires(), first)
	}
	a.m.Release(context.Background(), 1)
	if a.m.Fence(1).Valid() || !a.m.Fence(1).Expires().IsZero() {
		t.Error("released partition's fence still valid")
	}
	// Still assigned to a, so claimed again: Wait sees it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !a.m.Fence(1).Wait(ctx) {
		t.Error("Wait did not see the partition claimed again")
	}

	// Never claimed: Wait gives up with its context.
	_, js := natstest.Connect(t, srv)
	idle, err := partition.New(js, partition.Config{ReplicaID: "idle", Lease: 1500 * time.Millisecond}, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if idle.Fence(0).Valid() || idle.Fence(0).Wait(short) {
		t.Error("a fence never claimed is valid")
	}
}

// The fence's promise: a replica that can no longer renew (here its
// connection is gone; a stalled process is the same to the others) sees its
// fence lapse before another replica can claim its partitions. Compared with
// the server's own time of the new owner's claim, not with when this test
// noticed the take-over.
func TestFenceLapsesBeforeTakeOver(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	const parts = 2
	a := startReplica(t, srv, "a", parts)
	waitCover(t, parts, a)
	nc, js := natstest.Connect(t, srv)
	victim, err := partition.New(js, partition.Config{ReplicaID: "victim", Lease: 1500 * time.Millisecond}, parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, vcancel := context.WithCancel(context.Background())
	defer vcancel()
	go func() { _ = victim.Run(vctx) }()
	// The victim gets one partition once a releases it (as the pipeline does).
	var vpart int
	deadline := time.After(15 * time.Second)
	for held := false; !held; {
		select {
		case u := <-victim.Updates():
			if len(u) == 1 {
				vpart, held = u[0], true
			}
		case <-deadline:
			t.Fatal("the victim never got a partition")
		}
	}
	go func() {
		for range victim.Updates() { // keep Run from blocking; nothing to release
		}
	}()
	if !victim.Fence(vpart).Valid() {
		t.Fatal("victim's fence not valid on its claimed partition")
	}
	nc.Close() // no renewal, no release
	// Its fence stops moving once renewals fail: read it after the last one could land.
	time.Sleep(100 * time.Millisecond)
	expires := victim.Fence(vpart).Expires()
	if expires.IsZero() {
		t.Fatal("fence cleared at once; want it to run out")
	}

	_, ajs := natstest.Connect(t, srv)
	bucket, err := ajs.KeyValue(context.Background(), topology.ProcessorsBucket)
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.After(15 * time.Second)
	for {
		e, err := bucket.Get(context.Background(), "claim."+strconv.Itoa(vpart))
		if err == nil && string(e.Value()) == "a" {
			if !e.Created().After(expires) {
				t.Fatalf("a claimed partition %d at %s, before the victim's fence lapsed at %s", vpart, e.Created(), expires)
			}
			t.Logf("fence lapsed %s before the take-over", e.Created().Sub(expires))
			break
		}
		select {
		case <-deadline:
			t.Fatalf("a never took partition %d over", vpart)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if victim.Fence(vpart).Valid() {
		t.Error("victim's fence valid after the take-over")
	}
}
