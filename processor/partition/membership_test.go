package partition_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/partition"
)

type replica struct {
	m      *partition.Membership
	cancel context.CancelFunc
	done   chan error
	owned  chan []int // latest set, mirrored from Updates
}

func startReplica(t *testing.T, srv *embedded.Server, id string, parts int) *replica {
	t.Helper()
	_, js := natstest.Connect(t, srv)
	cfg := partition.Config{ReplicaID: id, Lease: 1500 * time.Millisecond}
	m, err := partition.New(js, cfg, parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{m: m, cancel: cancel, done: make(chan error, 1), owned: make(chan []int, 64)}
	go func() { r.done <- m.Run(ctx) }()
	go func() {
		// As the pipeline does: stop what left the set, then release it.
		for u := range m.Updates() {
			releaseExcept(m, u)
			r.owned <- u
		}
		releaseExcept(m, nil)
		close(r.owned)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func releaseExcept(m *partition.Membership, keep []int) {
	for _, p := range m.Held() {
		if !slices.Contains(keep, p) {
			m.Release(context.Background(), p)
		}
	}
}

// waitCover waits until the latest sets of rs are disjoint, cover every
// partition and are balanced (each holds parts/len(rs), rounded down or up),
// and returns them.
func waitCover(t *testing.T, parts int, rs ...*replica) [][]int {
	t.Helper()
	latest := make([][]int, len(rs))
	deadline := time.After(15 * time.Second)
	for {
		for i, r := range rs {
		drain:
			for {
				select {
				case u, ok := <-r.owned:
					if !ok {
						break drain
					}
					latest[i] = u
				default:
					break drain
				}
			}
		}
		var all []int
		for _, l := range latest {
			all = append(all, l...)
		}
		slices.Sort(all)
		balanced := true
		for _, l := range latest {
			balanced = balanced && len(l) >= parts/len(rs) && len(l) <= (parts+len(rs)-1)/len(rs)
		}
		if balanced && len(all) == parts && len(slices.Compact(slices.Clone(all))) == parts {
			return latest
		}
		select {
		case <-deadline:
			t.Fatalf("partitions never covered exactly once: %v", latest)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestMembershipSharesAndHandsOver(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	const parts = 8
	a := startReplica(t, srv, "a", parts)
	b := startReplica(t, srv, "b", parts)
	c := startReplica(t, srv, "c", parts)
	sets := waitCover(t, parts, a, b, c)
	for i, s := range sets {
		if len(s) < 2 || len(s) > 3 {
			t.Errorf("replica %d owns %v, want 2 or 3 of 8", i, s)
		}
	}

	// A clean stop deletes the lease: the others take over at once.
	start := time.Now()
	b.cancel()
	if err := <-b.done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	b.done <- nil // for the cleanup
	waitCover(t, parts, a, c)
	if d := time.Since(start); d > time.Second {
		t.Errorf("take-over after a clean stop took %s, want well under the 1.5s lease", d)
	}
}

func TestMembershipLeaseExpiresWhenKilled(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	const parts = 6
	a := startReplica(t, srv, "a", parts)
	// The victim's connection dies without a word: its lease must expire.
	nc, js := natstest.Connect(t, srv)
	victim, err := partition.New(js, partition.Config{ReplicaID: "victim", Lease: 1500 * time.Millisecond}, parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, vcancel := context.WithCancel(context.Background())
	vdone := make(chan error, 1)
	go func() { vdone <- victim.Run(vctx) }()
	// The victim's share changes as the two balance (it may hold one
	// partition first, then three): follow it to the end, as the pipeline
	// does, and compare a's share with the victim's latest.
	var vmu sync.Mutex
	var vOwned []int
	go func() {
		for u := range victim.Updates() {
			releaseExcept(victim, u)
			vmu.Lock()
			vOwned = u
			vmu.Unlock()
		}
	}()
	victimShare := func() []int {
		vmu.Lock()
		defer vmu.Unlock()
		return vOwned
	}
	var aLast []int
	settled := time.After(15 * time.Second)
	for {
		v := victimShare()
		if len(v) > 0 && len(v) < parts && len(aLast)+len(v) == parts && !slices.ContainsFunc(aLast, func(p int) bool { return slices.Contains(v, p) }) {
			break
		}
		select {
		case aLast = <-a.owned:
		case <-time.After(50 * time.Millisecond):
		case <-settled:
			t.Fatalf("a owns %v and the victim %v: never a disjoint split of %d partitions", aLast, victimShare(), parts)
		}
	}
	waitFor := func(want int) []int {
		deadline := time.After(10 * time.Second)
		last := aLast
		for {
			if len(last) == want {
				return last
			}
			select {
			case last = <-a.owned:
			case <-deadline:
				t.Fatalf("a owns %v, want %d partitions", last, want)
			}
		}
	}
	nc.Close() // killed: no delete, no release
	start := time.Now()
	got := waitFor(parts)
	// Generous: under the race detector on a loaded 2-core machine renewals
	// slip; what matters is that the lease bounds the take-over at all.
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("take-over of a dead replica took %s, want about a lease (1.5s) plus a renewal", d)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("a dead replica's claims were taken after %s, before its lease (1.5s) could expire", d)
	}
	if fmt.Sprint(got) != fmt.Sprint([]int{0, 1, 2, 3, 4, 5}) {
		t.Errorf("a owns %v", got)
	}
	vcancel()
	<-vdone
}

// A replica restarted under the same id (a crashed container in the same
// pod) takes its claims back at once instead of waiting for them to expire.
func TestRestartUnderSameIDTakesClaimsBack(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	const parts = 4
	lease := 5 * time.Second
	nc, js := natstest.Connect(t, srv)
	first, err := partition.New(js, partition.Config{ReplicaID: "p1", Lease: lease}, parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	select {
	case u := <-first.Updates():
		if len(u) != parts {
			t.Fatalf("alone, p1 processes %v", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no update")
	}
	nc.Close() // crash: lease and claims stay until they expire
	cancel()
	<-done

	_, js2 := natstest.Connect(t, srv)
	again, err := partition.New(js2, partition.Config{ReplicaID: "p1", Lease: lease}, parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { _ = again.Run(ctx2) }()
	start := time.Now()
	for {
		select {
		case u := <-again.Updates():
			if len(u) == parts {
				if d := time.Since(start); d > lease/2 {
					t.Errorf("took claims back after %s, want well under the %s lease", d, lease)
				}
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("restarted replica never got its partitions back")
		}
	}
}

// The membership bucket lives in memory, so a nats-server restart loses it
// with every lease and claim. A replica makes it again and claims its
// partitions afresh, rather than renewing into nothing for ever with every
// partition stopped. (Deleting the bucket is what the restart does to it.)
func TestMembershipBucketLostIsMadeAgain(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	const parts = 4
	a := startReplica(t, srv, "a", parts)
	waitCover(t, parts, a)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := js.DeleteKeyValue(ctx, topology.ProcessorsBucket); err != nil {
		t.Fatal(err)
	}
	for {
		kv, err := js.KeyValue(ctx, topology.ProcessorsBucket)
		if err == nil {
			claimed := 0
			for p := range parts {
				if e, err := kv.Get(ctx, fmt.Sprintf("claim.%d", p)); err == nil && string(e.Value()) == "a" {
					claimed++
				}
			}
			if claimed == parts && len(a.m.Held()) == parts {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("bucket not made again with every partition claimed by a and held (a holds %v; last error: %v)", a.m.Held(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
