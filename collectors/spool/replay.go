package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/atomicfile"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Publisher is what replay needs of the publisher.
type Publisher interface {
	NewBatch() *publish.Batch
}

// Conn says whether NATS is reachable; *nats.Conn is one.
type Conn interface {
	Status() nats.Status
}

var _ Conn = (*nats.Conn)(nil)

// replayKey marks the context of replayed records, so that Put refuses to
// spool one of them again when NATS goes away mid-replay.
type replayKey struct{}

// ackWait bounds the wait for one replayed batch's acknowledgements; past it
// the batch is replayed again later (the ids make that safe).
const ackWait = 30 * time.Second

// reader holds the bytes of the segment being replayed.
type reader struct {
	seq      uint64
	off, end int64  // file offsets buf covers
	buf      []byte // never written after it is read: records point into it
	gapMark  int64  // gaps before this offset of seq were reported already
	warnedAt time.Time
}

// Run replays spooled records through pub, in order, whenever conn is
// connected, until ctx ends or the spool closes. Records of a batch are
// checkpointed (the cursor moves past them) only after JetStream
// acknowledged every one of them.
func (s *Spool) Run(ctx context.Context, pub Publisher, conn Conn) error {
	ctx = context.WithValue(ctx, replayKey{}, true)
	t := time.NewTicker(s.cfg.ReplayInterval)
	defer t.Stop()
	var r reader
	for {
		if s.usedNow() > 0 && conn.Status() == nats.CONNECTED {
			n, err := s.replayOnce(ctx, pub, &r)
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				if time.Since(r.warnedAt) > 5*time.Second {
					r.warnedAt = time.Now()
					s.log.Warn("spool replay paused; retrying", "error", err)
				}
			case n > 0:
				continue
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// replayOnce replays up to replay_batch records from the cursor and returns
// how many it replayed (or how far it moved: a finished segment counts 1).
func (s *Spool) replayOnce(ctx context.Context, pub Publisher, r *reader) (int, error) {
	s.mu.Lock()
	cur := s.cursor
	size, exists := s.sizes[cur.Seg]
	active := s.w != nil && cur.Seg == s.wSeq
	s.mu.Unlock()
	if !exists {
		return 0, nil
	}
	if cur.Off >= size {
		if active {
			return 0, s.retireActive(cur)
		}
		return 1, s.advance(cur, position{Seg: cur.Seg, Off: size}, 0)
	}
	if r.seq != cur.Seg || r.off > cur.Off || r.end < size {
		if err := r.load(s.path(cur.Seg), cur.Seg, cur.Off, size); err != nil {
			return 0, err
		}
	}
	b := r.buf[cur.Off-r.off : size-r.off]

	batch := pub.NewBatch()
	var addErr error
	count, records := 0, 0
	end, torn := scan(b, 0, func(rec publish.Record, _ int) bool {
		if addErr = batch.Add(ctx, rec); addErr != nil {
			return false
		}
		count++
		return count < s.cfg.ReplayBatch
	}, func(from, to int) {
		if a, z := cur.Off+int64(from), cur.Off+int64(to); a >= r.gapMark {
			s.gap(cur.Seg, a, z, "checksum or framing mismatch (corrupted record)")
			r.gapMark = z
		}
	})
	records = count
	if addErr != nil {
		batch.Seal()
		// end is past the frame whose Add failed: do not move the cursor.
		return 0, fmt.Errorf("replay: %w", addErr)
	}
	if torn {
		// Incomplete record with nothing valid after it: written by a
		// crashed process, never completed.
		if a := cur.Off + int64(end); a >= r.gapMark {
			s.gap(cur.Seg, a, size, "incomplete record")
			r.gapMark = size
		}
		end = len(b)
	}
	wctx, cancel := context.WithTimeout(ctx, ackWait)
	defer cancel()
	if err := batch.Wait(wctx); err != nil {
		return 0, fmt.Errorf("replay: wait for %d acknowledgements: %w", records, err)
	}
	if err := s.advance(cur, position{Seg: cur.Seg, Off: cur.Off + int64(end)}, records); err != nil {
		return 0, err
	}
	return max(records, 1), nil
}

func (r *reader) load(path string, seq uint64, off, end int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("replay: open %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, end-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("replay: read %s: %w", path, err)
	}
	if r.seq != seq {
		r.gapMark = 0
	}
	r.seq, r.off, r.end, r.buf = seq, off, end, buf
	return nil
}

// advance moves the cursor from cur to next after records were
// acknowledged, deletes a segment that is finished (not the one being
// written), and wakes sources waiting for room.
func (s *Spool) advance(cur, next position, records int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cursor != cur {
		return nil // retired meanwhile
	}
	freed := next.Off - cur.Off
	finished := next.Off >= s.sizes[cur.Seg] && !(s.w != nil && cur.Seg == s.wSeq)
	if finished {
		i := slices.Index(s.segs, cur.Seg)
		if i+1 < len(s.segs) {
			next = position{Seg: s.segs[i+1]}
		} else {
			next = position{Seg: cur.Seg + 1}
		}
	}
	if err := s.saveCursorLocked(next); err != nil {
		return err
	}
	s.cursor = next
	s.used -= freed
	if finished {
		s.removeSegLocked(cur.Seg)
	}
	if err := s.retireActiveLocked(s.cursor); err != nil {
		return err
	}
	s.m.replayed(records, s.used)
	close(s.room)
	s.room = make(chan struct{})
	return nil
}

// retireActive deletes the segment being written once everything in it is
// replayed, so that an outage's spool does not linger on disk; the next Put
// starts a new segment.
func (s *Spool) retireActive(cur position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retireActiveLocked(cur)
}

func (s *Spool) retireActiveLocked(cur position) error {
	if s.cursor != cur || s.w == nil || s.wSeq != cur.Seg || s.sizes[cur.Seg] != cur.Off {
		return nil // a record was put meanwhile
	}
	next := position{Seg: cur.Seg + 1}
	if err := s.saveCursorLocked(next); err != nil {
		return err
	}
	if err := s.w.Close(); err != nil {
		s.log.Warn("spool: close replayed segment", "error", err)
	}
	s.w = nil
	s.cursor = next
	s.removeSegLocked(cur.Seg)
	return nil
}

func (s *Spool) removeSegLocked(seq uint64) {
	if err := os.Remove(s.path(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Left behind; Open deletes segments before the cursor.
		s.log.Warn("spool: remove replayed segment", "segment", segName(seq), "error", err)
	}
	s.segs = slices.DeleteFunc(s.segs, func(q uint64) bool { return q == seq })
	delete(s.sizes, seq)
}

func (s *Spool) saveCursorLocked(p position) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("spool: encode cursor: %w", err)
	}
	if err := atomicfile.WriteFile(s.cfg.Dir, cursorFile, append(b, '\n')); err != nil {
		return fmt.Errorf("spool: write cursor: %w", err)
	}
	return nil
}
