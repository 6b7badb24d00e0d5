package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

func testConfig(dir string) Config {
	cfg := NewDefaultConfig()
	cfg.Dir = dir
	cfg.ReplayInterval = 10 * time.Millisecond
	cfg.ReplayBatch = 64
	cfg.SegmentBytes = 16 * config.KiB // several segments in every test
	cfg.MaxBytes = 4 * config.MiB
	return cfg
}

func open(t testing.TB, cfg Config) *Spool {
	t.Helper()
	sp, err := Open(cfg, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close() })
	return sp
}

func rec(i int) publish.Record {
	data := fmt.Sprintf(`{"kind":"Event","auditID":"id-%05d","stage":"ResponseComplete","pad":"%s"}`, i, bytes.Repeat([]byte("x"), 200))
	return publish.Record{Source: topology.SourceK8sAudit, Data: []byte(data), ID: fmt.Sprintf("id-%05d-ResponseComplete", i),
		Observed: time.Unix(1700000000, int64(i))}
}

func wantIDs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("id-%05d-ResponseComplete", i))
	}
	return out
}

// replay runs the spool's replay until the test ends.
func replay(t testing.TB, sp *Spool, pub Publisher, conn Conn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx, pub, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
}

func waitEmpty(t testing.TB, sp *Spool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for sp.Bytes() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool still holds %d bytes", sp.Bytes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReplayInOrderWithOriginalIDs(t *testing.T) {
	b := bustest.Start(t)
	sp := open(t, testConfig(t.TempDir()))
	ctx := context.Background()
	for i := range 300 {
		if err := sp.Put(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(mustSegments(t, sp.cfg.Dir)); n < 3 {
		t.Fatalf("%d segments, want several", n)
	}
	pub := b.Publisher(t, bustest.PublishConfig())
	replay(t, sp, pub, b.NC)
	waitEmpty(t, sp)
	ms := b.WaitMessages(t, bustest.StreamK8sAudit, 300, 10*time.Second)
	if got := bustest.IDs(ms); !slices.Equal(got, wantIDs(0, 300)) {
		t.Fatalf("replayed ids out of order or missing: %v", got[:10])
	}
	if m := ms[7]; !bytes.Equal(m.Data, rec(7).Data) || m.Header.Get("Crowsnest-Observed") != "2023-11-14T22:13:20.000000007Z" {
		t.Errorf("record 7 changed on its way through the spool: %s %v", m.Data, m.Header)
	}
	// Replayed segments are deleted.
	deadline := time.Now().Add(5 * time.Second)
	for len(mustSegments(t, sp.cfg.Dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if segs := mustSegments(t, sp.cfg.Dir); len(segs) > 0 {
		t.Errorf("segments left after replay: %v", segs)
	}
}

func mustSegments(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOutageLosesNothing is the "30 s without NATS loses nothing",
// shortened: the server stops, sources keep publishing (the in-flight slots
// fill, then records go to the spool), the server restarts on the same store
// and every record arrives exactly once.
func TestOutageLosesNothing(t *testing.T) {
	b := bustest.Start(t)
	sp := open(t, testConfig(t.TempDir()))
	pcfg := bustest.PublishConfig()
	pcfg.MaxInFlight = 16
	pub := b.Publisher(t, pcfg, func(s *publish.Settings) { s.Spool = sp })
	replay(t, sp, pub, b.NC)

	ctx := context.Background()
	const before, during, after = 50, 400, 50
	for i := range before {
		if err := pub.Publish(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	b.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for b.NC.Status() == nats.CONNECTED && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var acks []*publish.Ack
	var err error
	for i := before; i < before+during; i++ {
		ack, err := pub.PublishAsync(ctx, rec(i))
		if err != nil {
			t.Fatalf("publish %d during the outage: %v", i, err)
		}
		acks = append(acks, ack)
	}
	if sp.Bytes() == 0 {
		t.Fatal("nothing was spooled during the outage")
	}
	outage := 2 * time.Second // CROWSNEST_TEST_OUTAGE=30s for the full length
	if v := os.Getenv("CROWSNEST_TEST_OUTAGE"); v != "" {
		if outage, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(outage)
	b.Restart(t)
	for i := before + during; i < before+during+after; i++ {
		if err := pub.Publish(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range acks {
		if err := a.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitEmpty(t, sp)
	total := before + during + after
	ms := b.WaitMessages(t, bustest.StreamK8sAudit, total, 20*time.Second)
	got := bustest.IDs(ms)
	slices.Sort(got)
	if !slices.Equal(got, wantIDs(0, total)) {
		t.Fatalf("stream holds %d records, want each of %d exactly once", len(ms), total)
	}
}

func TestReopenReplaysWhatWasLeft(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	sp, err := Open(cfg, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 120 {
		if err := sp.Put(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := sp.Put(context.Background(), rec(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v", err)
	}

	b := bustest.Start(t)
	sp2 := open(t, cfg)
	replay(t, sp2, b.Publisher(t, bustest.PublishConfig()), b.NC)
	waitEmpty(t, sp2)
	if got := bustest.IDs(b.WaitMessages(t, bustest.StreamK8sAudit, 120, 10*time.Second)); !slices.Equal(got, wantIDs(0, 120)) {
		t.Fatalf("ids = %v", got)
	}
}

// TestCorruptionIsAGap: a flipped byte inside one record and a torn record
// at the end are skipped, counted and logged; every other record replays.
func TestCorruptionIsAGap(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentBytes = 1 * config.MiB // one segment
	sp, err := Open(cfg, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for i := range 20 {
		frame, _ := appendFrame(nil, rec(i))
		sizes = append(sizes, len(frame))
		if err := sp.Put(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	seg := mustSegments(t, dir)[0]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	off5 := 0
	for _, n := range sizes[:5] {
		off5 += n
	}
	data[off5+headerLen+40] ^= 0xFF            // inside record 5's payload
	torn, _ := appendFrame(nil, rec(99))       // a record cut short by a crash
	data = append(data, torn[:len(torn)/2]...) //
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}

	b := bustest.Start(t)
	sp2 := open(t, cfg)
	if got := sp2.CorruptBytes(); got != int64(len(torn)/2) {
		t.Errorf("torn tail: %d corrupt bytes counted at open, want %d", got, len(torn)/2)
	}
	replay(t, sp2, b.Publisher(t, bustest.PublishConfig()), b.NC)
	waitEmpty(t, sp2)
	want := slices.Delete(wantIDs(0, 20), 5, 6)
	if got := bustest.IDs(b.WaitMessages(t, bustest.StreamK8sAudit, 19, 10*time.Second)); !slices.Equal(got, want) {
		t.Fatalf("ids = %v\nwant %v", got, want)
	}
	if got, min := sp2.CorruptBytes(), int64(len(torn)/2+sizes[5]); got != min {
		t.Errorf("corrupt bytes = %d, want %d (torn tail + record 5)", got, min)
	}
}

func TestFullBlocksThenDrains(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxBytes = 64 * config.KiB
	cfg.SegmentBytes = 8 * config.KiB
	sp := open(t, cfg)
	i := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := sp.Put(ctx, rec(i))
		cancel()
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		i++
		if i > 1000 {
			t.Fatal("never full")
		}
	}
	if !sp.Full(300) {
		t.Error("Full = false on a full spool")
	}
	// A blocked Put goes through once replay makes room.
	b := bustest.Start(t)
	done := make(chan error, 1)
	go func() { done <- sp.Put(context.Background(), rec(i)) }()
	select {
	case err := <-done:
		t.Fatalf("Put on a full spool returned at once: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	replay(t, sp, b.Publisher(t, bustest.PublishConfig()), b.NC)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, sp)
	if got := bustest.IDs(b.WaitMessages(t, bustest.StreamK8sAudit, i+1, 10*time.Second)); !slices.Equal(got, wantIDs(0, i+1)) {
		t.Fatalf("ids = %v", got)
	}
}

func TestFsyncPolicies(t *testing.T) {
	for _, p := range []Fsync{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(string(p), func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.Fsync = p
			cfg.FsyncInterval = 5 * time.Millisecond
			sp, err := Open(cfg, Settings{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				if err := sp.Put(context.Background(), rec(i)); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(20 * time.Millisecond)
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			sp2 := open(t, cfg)
			if sp2.Bytes() != sp.Bytes() || sp2.Bytes() == 0 {
				t.Errorf("reopened spool holds %d bytes, want %d", sp2.Bytes(), sp.Bytes())
			}
		})
	}
	cfg := testConfig(t.TempDir())
	cfg.Fsync = "sometimes"
	if err := cfg.Validate(); err == nil {
		t.Error("fsync: sometimes validated")
	}
}

// FuzzScan: no input makes the reader panic, and what it yields is exactly
// what a writer could have written (this version, or version 1 for frames of
// an older spool).
func FuzzScan(f *testing.F) {
	var seed []byte
	for i := range 3 {
		seed, _ = appendFrame(seed, rec(i))
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add(append([]byte("garbage"), seed...))
	full, _ := appendFrame(nil, fullRecord(f))
	f.Add(full)
	f.Add(appendFrameV1(bytes.Clone(full), rec(4)))
	if old, err := os.ReadFile("testdata/v1/00000000000000000001.seg"); err == nil {
		f.Add(old)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		last := 0
		scan(b, 0, func(r publish.Record, end int) bool {
			frame, err := appendFrame(nil, r)
			if err != nil {
				t.Fatal(err)
			}
			endsWith := func(frame []byte) bool { return end >= len(frame) && bytes.Equal(b[end-len(frame):end], frame) }
			v1 := r.Key == "" && r.DeadLetter == "" && endsWith(appendFrameV1(nil, r))
			if end <= last || !endsWith(frame) && !v1 {
				t.Fatalf("yielded record at %d does not re-encode to its bytes", end)
			}
			last = end
			return true
		}, func(from, to int) {
			if from < 0 || to > len(b) || from >= to {
				t.Fatalf("gap [%d,%d) outside [0,%d)", from, to, len(b))
			}
		})
	})
}
