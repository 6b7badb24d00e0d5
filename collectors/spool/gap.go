package spool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/atomicfile"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Why records were lost: the reason of a gap record.
const (
	// GapSpoolFull: the spool was full and full_policy is drop.
	GapSpoolFull = "spool_full"
	// GapSpoolCorrupt: bytes of the spool were skipped as corrupt or torn
	// (a crash mid-write, damage on disk). How many records they held is
	// unknown, and so is their source.
	GapSpoolCorrupt = "spool_corrupt"
)

// gapsFile keeps the gaps not yet acknowledged by JetStream across restarts.
const gapsFile = "gaps.json"

// A Gap counts records lost from one source for one reason between First
// and Last. It becomes one gap record (FORMAT in doc.go) on the collector
// source, so that the loss is visible in the SIEM.
type Gap struct {
	// ID is the gap record's message id, fixed when the gap opens: a gap
	// re-sent after a failed or unknown outcome is stored once.
	ID string `json:"id"`
	// Source is the source whose records were lost; empty when unknown
	// (corrupt bytes cannot say whose they were).
	Source string `json:"source,omitempty"`
	// Reason is GapSpoolFull or GapSpoolCorrupt.
	Reason string `json:"reason"`
	// Records is how many records were lost; 0 when unknown (corruption).
	Records int64 `json:"records"`
	// Bytes is how many bytes they took in the spool.
	Bytes int64 `json:"bytes"`
	// First and Last bound when the records were lost: their observed
	// times for dropped records, the time the damage was found for corrupt
	// bytes.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// gapRecord is a gap record's body: the Gap with its type, so that a
// reader can tell it from other collector telemetry.
type gapRecord struct {
	Type string `json:"type"`
	Gap
}

// GapRecordType is the "type" of a gap record's body.
const GapRecordType = "gap"

// Record is the gap record to publish.
func (g Gap) Record() (publish.Record, error) {
	data, err := json.Marshal(gapRecord{Type: GapRecordType, Gap: g})
	if err != nil {
		return publish.Record{}, fmt.Errorf("encode gap record: %w", err)
	}
	return publish.Record{Source: topology.SourceCollector, ID: g.ID, Data: data, Observed: g.Last}, nil
}

type gapKey struct{ source, reason string }

// gapLedger counts lost records: open gaps grow until the next flush closes
// them; closed gaps wait for JetStream's acknowledgement of their record.
type gapLedger struct {
	mu      sync.Mutex
	open    map[gapKey]*Gap
	pending []Gap
	saved   time.Time // last write of gaps.json from the hot path
	flushMu sync.Mutex
	saveMu  sync.Mutex
}

func newGapID(reason string, t time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("gap-%s-%d-%s", reason, t.UnixNano(), hex.EncodeToString(b[:]))
}

// lose counts records (or, for corruption, bytes) lost at t.
func (s *Spool) lose(source, reason string, records, bytes int64, t time.Time) {
	if t.IsZero() {
		t = time.Now()
	}
	l := &s.gaps
	l.mu.Lock()
	if l.open == nil {
		l.open = map[gapKey]*Gap{}
	}
	k := gapKey{source, reason}
	g := l.open[k]
	if g == nil {
		g = &Gap{ID: newGapID(reason, t), Source: source, Reason: reason, First: t, Last: t}
		l.open[k] = g
	}
	g.Records += records
	g.Bytes += bytes
	if t.Before(g.First) {
		g.First = t
	}
	if t.After(g.Last) {
		g.Last = t
	}
	// Persist at most once a second from here, so that a crash loses at
	// most a second of counts without a file write per dropped record.
	save := false
	if now := time.Now(); now.Sub(l.saved) >= time.Second {
		l.saved = now
		save = true
	}
	l.mu.Unlock()
	s.m.lost(source, reason, records)
	if save {
		s.saveGaps()
	}
}

// snapshotLocked is every gap, pending and open.
func (l *gapLedger) snapshotLocked() []Gap {
	out := slices.Clone(l.pending)
	for _, g := range l.open {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Gap) int { return a.First.Compare(b.First) })
	return out
}

// Gaps returns the gaps not yet reported (acknowledged by JetStream), open
// ones included, oldest first.
func (s *Spool) Gaps() []Gap {
	s.gaps.mu.Lock()
	defer s.gaps.mu.Unlock()
	return s.gaps.snapshotLocked()
}

// FlushGaps closes the open gaps and publishes a gap record for every gap
// not yet reported, waiting for JetStream's acknowledgements. A gap whose
// record was not acknowledged stays and is sent again, under the same id,
// by the next flush (or the next run: Close keeps it on disk). Gap records
// are never dropped: when NATS is away they wait in the spool, which
// blocks rather than drop them when full.
func (s *Spool) FlushGaps(ctx context.Context, pub Publisher) error {
	l := &s.gaps
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	for k, g := range l.open {
		l.pending = append(l.pending, *g)
		delete(l.open, k)
	}
	todo := slices.Clone(l.pending)
	l.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	s.saveGaps()

	acks := make([]*publish.Ack, len(todo))
	var errs []error
	for i, g := range todo {
		rec, err := g.Record()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b := pub.NewBatch()
		if err := b.Add(ctx, rec); err != nil {
			b.Seal()
			errs = append(errs, fmt.Errorf("publish gap record %s: %w", g.ID, err))
			continue
		}
		acks[i] = b.Seal()
	}
	done := map[string]bool{}
	for i, a := range acks {
		if a == nil {
			continue
		}
		if err := a.Wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gap record %s: %w", todo[i].ID, err))
			continue
		}
		done[todo[i].ID] = true
		s.m.gapReported()
		s.log.Warn("gap record published: records were lost", "source", todo[i].Source, "reason", todo[i].Reason,
			"records", todo[i].Records, "bytes", todo[i].Bytes, "first", todo[i].First, "last", todo[i].Last, "event_id", todo[i].ID)
	}
	l.mu.Lock()
	l.pending = slices.DeleteFunc(l.pending, func(g Gap) bool { return done[g.ID] })
	l.mu.Unlock()
	s.saveGaps()
	return errors.Join(errs...)
}

// ReportGaps flushes gaps every interval until ctx ends or the spool
// closes. A failed flush is logged and retried at the next tick.
func (s *Spool) ReportGaps(ctx context.Context, pub Publisher, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			return nil
		case <-t.C:
		}
		if err := s.FlushGaps(ctx, pub); err != nil && ctx.Err() == nil {
			s.log.Warn("gap records not published yet; retrying", "error", err)
		}
	}
}

// saveGaps writes the current gaps to gaps.json, or removes it when there
// is nothing to keep. It snapshots under saveMu so that the last write is
// always the latest state.
func (s *Spool) saveGaps() {
	s.gaps.saveMu.Lock()
	defer s.gaps.saveMu.Unlock()
	if err := s.writeGaps(s.Gaps()); err != nil {
		s.log.Error("spool: cannot keep the unreported gaps on disk; they are reported while this process runs", "error", err)
	}
}

func (s *Spool) writeGaps(gaps []Gap) error {
	if len(gaps) == 0 {
		if err := os.Remove(filepath.Join(s.cfg.Dir, gapsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", gapsFile, err)
		}
		return nil
	}
	b, err := json.Marshal(gaps)
	if err != nil {
		return fmt.Errorf("encode %s: %w", gapsFile, err)
	}
	if err := atomicfile.WriteFile(s.cfg.Dir, gapsFile, append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", gapsFile, err)
	}
	return nil
}

// loadGaps reads the gaps a previous run did not report.
func (s *Spool) loadGaps() error {
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, gapsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool: read %s: %w", gapsFile, err)
	}
	var gaps []Gap
	if err := json.Unmarshal(b, &gaps); err != nil {
		// Written atomically, so this is damage from outside; the loss it
		// counted is itself lost, which is said here and in a gap.
		s.log.Error("spool: unreported gaps unreadable; their counts are lost", "file", gapsFile, "error", err)
		s.lose("", GapSpoolCorrupt, 0, int64(len(b)), time.Time{})
		return nil
	}
	s.gaps.pending = gaps
	if len(gaps) > 0 {
		s.log.Warn("spool holds gap records from before; they are published when NATS is reachable", "gaps", len(gaps))
	}
	return nil
}
