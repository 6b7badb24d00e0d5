package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

var (
	// ErrFull is wrapped by Put's error when the spool stayed full until
	// the context ended.
	ErrFull = errors.New("spool full")
	// ErrClosed is returned by Put after Close.
	ErrClosed = errors.New("spool closed")
	// errReplaying refuses to spool again a record the spool is replaying
	// (NATS went away mid-replay): it stays where it is on disk.
	errReplaying = errors.New("record is being replayed from the spool")
)

const (
	segmentExt = ".seg"
	cursorFile = "cursor.json"
)

var _ publish.Spool = (*Spool)(nil)

// Settings is what the code gives a Spool.
type Settings struct {
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer takes the spool metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Spool is the disk spool. Put is safe for concurrent use; one Run
// replays.
type Spool struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	mu      sync.Mutex
	segs    []uint64 // sequence numbers of the segment files, ascending
	sizes   map[uint64]int64
	w       *os.File // the last segment, open for appending; nil: none yet
	wSeq    uint64
	dirty   bool // appended since the last fsync
	cursor  position
	used    int64         // bytes not yet replayed
	room    chan struct{} // closed (and replaced) when replay frees space
	wake    chan struct{} // a record was put
	closed  bool
	scratch []byte

	corrupt atomic.Int64 // bytes skipped as corrupt or torn
	gaps    gapLedger
	dropLog atomic.Int64 // unix nanos of the last "dropping" warning

	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

// position is the replay cursor: the next record is at Off in segment Seg.
type position struct {
	Seg uint64 `json:"segment"`
	Off int64  `json:"offset"`
}

// Open opens (creating) the spool in cfg.Dir, truncates a torn record at
// the end of the last segment (a crash mid-append), and starts the fsync
// ticker. Close it.
func Open(cfg Config, s Settings) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("spool config: %w", err)
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(s.Registerer)
	if err != nil {
		return nil, err
	}
	sp := &Spool{
		cfg:   cfg,
		log:   log.With("component", "spool", "dir", cfg.Dir),
		m:     m,
		sizes: map[uint64]int64{},
		room:  make(chan struct{}),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", cfg.Dir, err)
	}
	if err := sp.loadGaps(); err != nil {
		return nil, err
	}
	if err := sp.load(); err != nil {
		return nil, err
	}
	if cfg.Fsync == FsyncInterval {
		sp.wg.Add(1)
		go sp.syncLoop()
	}
	if sp.used > 0 {
		sp.log.Info("spool holds records from before; they are replayed when NATS is reachable", "bytes", sp.used, "segments", len(sp.segs))
	}
	return sp, nil
}

func segName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segmentExt) }

func (s *Spool) path(seq uint64) string { return filepath.Join(s.cfg.Dir, segName(seq)) }

// load finds the segments and the cursor and repairs a torn tail.
func (s *Spool) load() error {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("spool: read %s: %w", s.cfg.Dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, segmentExt) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("spool: stat %s: %w", name, err)
		}
		s.segs = append(s.segs, seq)
		s.sizes[seq] = fi.Size()
	}
	slices.Sort(s.segs)

	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, cursorFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("spool: read cursor: %w", err)
	default:
		if jerr := json.Unmarshal(b, &s.cursor); jerr != nil {
			// The cursor is written atomically, so this is damage from
			// outside: replaying from the first segment re-sends records
			// JetStream drops as duplicates, rather than losing any.
			s.log.Warn("spool cursor unreadable; replaying every segment from its start", "error", jerr)
			s.cursor = position{}
		}
	}
	if len(s.segs) == 0 {
		s.cursor = position{Seg: max(s.cursor.Seg, 1)}
		return nil
	}
	if !slices.Contains(s.segs, s.cursor.Seg) || s.cursor.Off > s.sizes[s.cursor.Seg] || s.cursor.Off < 0 {
		if s.cursor.Seg > s.segs[len(s.segs)-1] {
			s.log.Warn("spool cursor is past every segment; replaying them all", "cursor", s.cursor.Seg)
		}
		// The cursor's segment was replayed and deleted: go on from the next.
		i, _ := slices.BinarySearch(s.segs, s.cursor.Seg)
		if i >= len(s.segs) || s.cursor.Seg > s.segs[len(s.segs)-1] {
			i = 0
		}
		s.cursor = position{Seg: s.segs[i]}
	}
	// Drop segments before the cursor (replayed; deletion was interrupted).
	for len(s.segs) > 0 && s.segs[0] < s.cursor.Seg {
		if err := os.Remove(s.path(s.segs[0])); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("spool: remove replayed segment: %w", err)
		}
		delete(s.sizes, s.segs[0])
		s.segs = s.segs[1:]
	}
	if err := s.repairTail(); err != nil {
		return err
	}
	for _, seq := range s.segs {
		s.used += s.sizes[seq]
	}
	s.used -= s.cursor.Off
	return nil
}

// repairTail truncates an incomplete record at the end of the last segment
// and opens it for appending.
func (s *Spool) repairTail() error {
	last := s.segs[len(s.segs)-1]
	f, err := os.OpenFile(s.path(last), os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("spool: open %s: %w", segName(last), err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("spool: read %s: %w", segName(last), err)
	}
	from := 0
	if last == s.cursor.Seg {
		from = int(s.cursor.Off)
	}
	end, torn := scan(b, from, func(publish.Record, int) bool { return true }, func(int, int) {})
	if torn && end < len(b) {
		s.gap(last, int64(end), int64(len(b)), "incomplete record at the end of the spool (a crash mid-write)")
		if err := f.Truncate(int64(end)); err != nil {
			f.Close()
			return fmt.Errorf("spool: truncate torn tail of %s: %w", segName(last), err)
		}
		s.sizes[last] = int64(end)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return fmt.Errorf("spool: seek %s: %w", segName(last), err)
	}
	s.w, s.wSeq = f, last
	return nil
}

func (s *Spool) gap(seq uint64, from, to int64, why string) {
	s.corrupt.Add(to - from)
	s.m.corrupt(to - from)
	s.log.Error("spool gap: bytes skipped", "segment", segName(seq), "from", from, "to", to, "bytes", to-from, "reason", why)
	s.lose("", GapSpoolCorrupt, 0, to-from, time.Time{})
}

// Put appends rec. It blocks while the spool is full, until replay makes
// room, ctx ends (an error wrapping ErrFull) or the spool closes — unless
// full_policy is drop: then it counts rec as lost (a gap record reports it)
// and returns an error wrapping publish.ErrDropped, which the publisher
// settles as an intended discard. A gap record (source collector) is never
// dropped.
func (s *Spool) Put(ctx context.Context, rec publish.Record) error {
	if ctx.Value(replayKey{}) != nil {
		return errReplaying
	}
	waited := false
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		var err error
		s.scratch, err = appendFrame(s.scratch[:0], rec)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("spool record %s: %w", rec.ID, err)
		}
		n := int64(len(s.scratch))
		if s.used == 0 || s.used+n <= int64(s.cfg.MaxBytes) {
			err := s.appendLocked(s.scratch)
			s.mu.Unlock()
			if err != nil {
				return err
			}
			s.m.put(s.usedNow())
			select {
			case s.wake <- struct{}{}:
			default:
			}
			return nil
		}
		room := s.room
		s.mu.Unlock()
		if s.cfg.FullPolicy == FullDrop && rec.Source != topology.SourceCollector {
			s.drop(rec, n)
			return fmt.Errorf("spool record %s: %w: spool full (max_bytes %s, full_policy drop)", rec.ID, publish.ErrDropped, s.cfg.MaxBytes)
		}
		if !waited {
			waited = true
			s.m.fullWait()
			s.log.Warn("spool full: the source waits until replay makes room", "max_bytes", int64(s.cfg.MaxBytes))
		}
		select {
		case <-room:
		case <-s.stop:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("%w (max_bytes %s): %w", ErrFull, s.cfg.MaxBytes, ctx.Err())
		}
	}
}

// drop counts a record the full spool does not take.
func (s *Spool) drop(rec publish.Record, n int64) {
	s.lose(rec.Source, GapSpoolFull, 1, n, rec.Observed)
	now := time.Now().UnixNano()
	if last := s.dropLog.Load(); now-last >= int64(10*time.Second) && s.dropLog.CompareAndSwap(last, now) {
		s.log.Warn("spool full: dropping records (full_policy drop); each is counted in a gap record",
			"source", rec.Source, "max_bytes", int64(s.cfg.MaxBytes))
	}
}

func (s *Spool) usedNow() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// appendLocked writes one frame to the last segment, rolling to a new one
// when it is full.
func (s *Spool) appendLocked(frame []byte) error {
	if s.w == nil || (s.sizes[s.wSeq] > 0 && s.sizes[s.wSeq]+int64(len(frame)) > int64(s.cfg.SegmentBytes)) {
		if err := s.rollLocked(); err != nil {
			return err
		}
	}
	size := s.sizes[s.wSeq]
	if _, err := s.w.Write(frame); err != nil {
		// Take back a partial write so the next record starts clean.
		if terr := s.w.Truncate(size); terr == nil {
			_, _ = s.w.Seek(size, io.SeekStart)
		}
		return fmt.Errorf("spool: append to %s: %w", segName(s.wSeq), err)
	}
	s.sizes[s.wSeq] = size + int64(len(frame))
	s.used += int64(len(frame))
	s.dirty = true
	if s.cfg.Fsync == FsyncAlways {
		if err := s.w.Sync(); err != nil {
			return fmt.Errorf("spool: fsync %s: %w", segName(s.wSeq), err)
		}
		s.dirty = false
	}
	return nil
}

// rollLocked closes the current segment and starts the next.
func (s *Spool) rollLocked() error {
	next := s.cursor.Seg
	if len(s.segs) > 0 {
		next = s.segs[len(s.segs)-1] + 1
	}
	if s.w != nil {
		if s.cfg.Fsync != FsyncNever {
			if err := s.w.Sync(); err != nil {
				return fmt.Errorf("spool: fsync %s: %w", segName(s.wSeq), err)
			}
		}
		if err := s.w.Close(); err != nil {
			return fmt.Errorf("spool: close %s: %w", segName(s.wSeq), err)
		}
		s.w = nil
	}
	f, err := os.OpenFile(s.path(next), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	if s.cfg.Fsync != FsyncNever {
		syncDir(s.cfg.Dir)
	}
	s.w, s.wSeq = f, next
	s.segs = append(s.segs, next)
	s.sizes[next] = 0
	if len(s.segs) == 1 {
		s.cursor = position{Seg: next}
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the segment's own fsync is what counts
		d.Close()
	}
}

func (s *Spool) syncLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.dirty && s.w != nil {
			if err := s.w.Sync(); err != nil {
				s.log.Error("spool fsync failed", "segment", segName(s.wSeq), "error", err)
			} else {
				s.dirty = false
			}
		}
		s.mu.Unlock()
	}
}

// CorruptBytes is how many bytes were skipped as corrupt or torn since
// Open: records lost to damage on disk.
func (s *Spool) CorruptBytes() int64 { return s.corrupt.Load() }

// Bytes is how many bytes wait for replay.
func (s *Spool) Bytes() int64 { return s.usedNow() }

// Full reports whether a record of n bytes would have to wait: never with
// full_policy drop, where it would be dropped and counted instead.
func (s *Spool) Full(n int) bool {
	if s.cfg.FullPolicy == FullDrop {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used > 0 && s.used+int64(n)+headerLen > int64(s.cfg.MaxBytes)
}

// Close syncs and closes the segment files and stops the background work.
// Records not replayed stay on disk for the next Open. Safe to call twice.
func (s *Spool) Close() error {
	s.stopped.Do(func() { close(s.stop) })
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// Gaps not reported yet are kept for the next run, which reports them.
	s.saveGaps()
	if s.w == nil {
		return nil
	}
	var errs []error
	if s.cfg.Fsync != FsyncNever {
		if err := s.w.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("spool: fsync: %w", err))
		}
	}
	if err := s.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("spool: close: %w", err))
	}
	s.w = nil
	return errors.Join(errs...)
}
