package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

const streamCollector = "CROWSNEST_RAW_COLLECTOR"

func dropConfig(dir string) Config {
	cfg := testConfig(dir)
	cfg.MaxBytes = 64 * config.KiB
	cfg.SegmentBytes = 16 * config.KiB
	cfg.FullPolicy = FullDrop
	return cfg
}

// fill puts records until the spool is full and then n more, which the drop
// policy drops; it returns how many were taken.
func fill(t *testing.T, sp *Spool, n int) (taken int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		if sp.Full(1) {
			t.Fatal("Full says a drop-policy spool would make a record wait")
		}
		before := sp.Bytes()
		err := sp.Put(ctx, rec(i))
		switch {
		case errors.Is(err, publish.ErrDropped):
			if sp.Bytes() != before {
				t.Fatalf("Put %d: dropped, yet the spool grew", i)
			}
			n--
			if n == 0 {
				return taken
			}
		case err != nil:
			t.Fatalf("Put %d: %v", i, err)
		default:
			taken++
		}
	}
}

func TestDropPolicyCountsAndReportsAGap(t *testing.T) {
	reg := prometheus.NewRegistry()
	sp, err := Open(dropConfig(t.TempDir()), Settings{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close() })
	taken := fill(t, sp, 25)
	gaps := sp.Gaps()
	if len(gaps) != 1 {
		t.Fatalf("gaps %+v, want one", gaps)
	}
	g := gaps[0]
	if g.Source != topology.SourceK8sAudit || g.Reason != GapSpoolFull || g.Records != 25 || g.Bytes <= 0 {
		t.Errorf("gap %+v, want 25 k8s_audit records lost to spool_full", g)
	}
	// The window is the observed times of the first and last dropped record.
	if !g.First.Equal(rec(taken).Observed) || !g.Last.Equal(rec(taken+24).Observed) {
		t.Errorf("gap window [%v, %v], want [%v, %v]", g.First, g.Last, rec(taken).Observed, rec(taken+24).Observed)
	}
	if got := testutil.ToFloat64(sp.m.lostRecords.WithLabelValues("k8s_audit", GapSpoolFull)); got != 25 {
		t.Errorf("%s = %v, want 25", MetricLostRecords, got)
	}

	b := bustest.Start(t)
	pub := b.Publisher(t, bustest.PublishConfig())
	if err := sp.FlushGaps(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	ms := b.WaitMessages(t, streamCollector, 1, 10*time.Second)
	if len(ms) != 1 || ms[0].ID != g.ID {
		t.Fatalf("collector stream holds %v, want the gap %s", bustest.IDs(ms), g.ID)
	}
	body := gjson.ParseBytes(ms[0].Data)
	for path, want := range map[string]string{
		"type": "gap", "source": "k8s_audit", "reason": "spool_full", "records": "25",
		"first": g.First.UTC().Format(time.RFC3339Nano), "last": g.Last.UTC().Format(time.RFC3339Nano),
	} {
		if got := body.Get(path).String(); got != want {
			t.Errorf("gap record %s = %q, want %q (%s)", path, got, want, ms[0].Data)
		}
	}
	if len(sp.Gaps()) != 0 {
		t.Errorf("gaps left after an acknowledged flush: %+v", sp.Gaps())
	}
	if got := testutil.ToFloat64(sp.m.gaps); got != 1 {
		t.Errorf("%s = %v, want 1", MetricGapRecords, got)
	}
	// Nothing new: a flush publishes nothing.
	if err := sp.FlushGaps(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	if ms := b.Messages(t, streamCollector); len(ms) != 1 {
		t.Errorf("an empty flush published: %v", bustest.IDs(ms))
	}
}

// TestGapRecordsAreNeverDropped: a full drop-policy spool blocks a gap
// record rather than drop it.
func TestGapRecordsAreNeverDropped(t *testing.T) {
	sp := open(t, dropConfig(t.TempDir()))
	fill(t, sp, 1)
	g, err := sp.Gaps()[0].Record()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := sp.Put(ctx, g); !errors.Is(err, ErrFull) {
		t.Errorf("Put of a gap record into a full spool = %v, want it to wait (ErrFull at the deadline)", err)
	}
}

func TestBlockPolicyDropsNothing(t *testing.T) {
	cfg := dropConfig(t.TempDir())
	cfg.FullPolicy = FullBlock
	sp := open(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var err error
	for i := 0; err == nil; i++ {
		err = sp.Put(ctx, rec(i))
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Put = %v, want ErrFull after waiting", err)
	}
	if gaps := sp.Gaps(); len(gaps) != 0 {
		t.Errorf("block policy lost records: %+v", gaps)
	}
}

// TestCorruptionBecomesAGapRecord: bytes the replay skips as corrupt become a gap
// record like dropped records (source unknown, bytes counted).
func TestCorruptionBecomesAGapRecord(t *testing.T) {
	dir := t.TempDir()
	sp, err := Open(testConfig(dir), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := sp.Put(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	segs := mustSegments(t, dir)
	raw, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	raw[headerLen+40] ^= 0xff // inside the first record's payload
	if err := os.WriteFile(segs[0], raw, 0o600); err != nil {
		t.Fatal(err)
	}
	b := bustest.Start(t)
	sp = open(t, testConfig(dir))
	pub := b.Publisher(t, bustest.PublishConfig())
	replay(t, sp, pub, b.NC)
	waitEmpty(t, sp)
	b.WaitMessages(t, bustest.StreamK8sAudit, 9, 10*time.Second)
	gaps := sp.Gaps()
	if len(gaps) != 1 || gaps[0].Reason != GapSpoolCorrupt || gaps[0].Source != "" || gaps[0].Bytes != sp.CorruptBytes() || gaps[0].Bytes == 0 {
		t.Fatalf("gaps %+v, want one spool_corrupt gap of %d bytes", gaps, sp.CorruptBytes())
	}
	if err := sp.FlushGaps(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	ms := b.WaitMessages(t, streamCollector, 1, 10*time.Second)
	if r := gjson.GetBytes(ms[0].Data, "reason").String(); r != GapSpoolCorrupt {
		t.Errorf("gap record %s", ms[0].Data)
	}
}

// TestUnreportedGapsSurviveARestart: a gap not yet acknowledged is kept on
// disk by Close and reported, under the same id, by the next run.
func TestUnreportedGapsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	sp, err := Open(dropConfig(dir), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, sp, 3)
	want := sp.Gaps()
	// NATS is away: the flush fails and the gap stays.
	b := bustest.Start(t)
	pub := b.Publisher(t, bustest.PublishConfig())
	b.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if err := sp.FlushGaps(ctx, pub); err == nil {
		t.Error("FlushGaps without NATS succeeded")
	}
	cancel()
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, gapsFile)); err != nil {
		t.Fatalf("Close kept no gaps file: %v", err)
	}

	sp = open(t, dropConfig(dir))
	got := sp.Gaps()
	if len(got) != 1 || got[0].ID != want[0].ID || got[0].Records != 3 {
		t.Fatalf("after reopen gaps %+v, want %+v", got, want)
	}
	b.Restart(t)
	pub2 := b.Publisher(t, bustest.PublishConfig())
	if err := sp.FlushGaps(context.Background(), pub2); err != nil {
		t.Fatal(err)
	}
	// Give the first publisher's retried record time to land too: the id
	// makes the two one.
	time.Sleep(300 * time.Millisecond)
	ms := b.WaitMessages(t, streamCollector, 1, 10*time.Second)
	if len(ms) != 1 || ms[0].ID != want[0].ID {
		t.Errorf("collector stream %v, want the one gap %s", bustest.IDs(ms), want[0].ID)
	}
	if _, err := os.Stat(filepath.Join(dir, gapsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gaps file left after every gap was reported: %v", err)
	}
}

func TestFullPolicyValidates(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.FullPolicy = "dorp"
	if err := cfg.Validate(); err == nil {
		t.Error("full_policy typo validated")
	}
	cfg = NewDefaultConfig()
	cfg.GapInterval = 0
	if err := cfg.Validate(); err == nil {
		t.Error("gap_interval 0 validated")
	}
	var _ publish.Spool = (*Spool)(nil)
}

// TestDropPolicyAccountsForEveryRecord: through the publisher, with NATS
// away and a small drop-policy spool, no source waits, and once NATS is back
// every record is either stored or counted in the gap record — none is lost
// silently.
func TestDropPolicyAccountsForEveryRecord(t *testing.T) {
	b := bustest.Start(t)
	sp := open(t, dropConfig(t.TempDir()))
	pcfg := bustest.PublishConfig()
	pcfg.MaxInFlight = 8
	pub := b.Publisher(t, pcfg, func(s *publish.Settings) { s.Spool = sp })
	b.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for b.NC.Status() == nats.CONNECTED && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	const total = 600 // ~170 KB of records for a 64 KiB spool
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var acks []*publish.Ack
	for i := range total {
		ack, err := pub.PublishAsync(ctx, rec(i))
		if err != nil {
			t.Fatalf("publish %d: %v (a drop-policy spool must not make the source wait)", i, err)
		}
		acks = append(acks, ack)
	}
	gaps := sp.Gaps()
	if len(gaps) != 1 || gaps[0].Records == 0 {
		t.Fatalf("gaps %+v, want the dropped records counted", gaps)
	}
	b.Restart(t)
	replay(t, sp, pub, b.NC)
	for i, a := range acks {
		if err := a.Wait(ctx); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	waitEmpty(t, sp)
	if err := sp.FlushGaps(ctx, pub); err != nil {
		t.Fatal(err)
	}
	// Every Ack is settled and the spool is replayed: the stream is final.
	stored := len(b.Messages(t, bustest.StreamK8sAudit))
	ms := b.WaitMessages(t, streamCollector, 1, 10*time.Second)
	lost := gjson.GetBytes(ms[0].Data, "records").Int()
	if stored+int(lost) != total || lost != gaps[0].Records {
		t.Errorf("%d stored + %d in the gap record = %d, want %d (gap counted %d)", stored, lost, stored+int(lost), total, gaps[0].Records)
	}
}
