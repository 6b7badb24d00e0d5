package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/tidwall/gjson"
)

// indexDir is the subdirectory of Dir that holds the indexes.
const indexDir = ".index"

// maxRanges bounds what an index remembers when no ack floor arrives to
// prune it (see seqSet.capRanges).
const maxRanges = 100_000

// compactAt is the journal size past which it is compacted.
const compactAt = 1 << 20

// Sink writes records as JSON lines to rotating files, one series per
// stream. See the package documentation.
type Sink struct {
	dir     string
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	writers map[sink.Kind]*writer

	closeOnce sync.Once
	closeErr  error
}

var (
	_ sink.Sink             = (*Sink)(nil)
	_ sink.ConsumerObserver = (*Sink)(nil)
)

// New opens the directory, recovers each stream's files to what its index
// says was committed, and returns a sink that appends to new files.
func New(cfg Config, set sink.Settings) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	dir := cfg.Dir
	if dir == "" {
		if set.DataDir == "" {
			return nil, errors.New("file sink: dir is empty and no data directory is set")
		}
		dir = filepath.Join(set.DataDir, "files")
	}
	if err := os.MkdirAll(filepath.Join(dir, indexDir), 0o750); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	s := &Sink{
		dir:     dir,
		cfg:     cfg,
		log:     set.LoggerOrDiscard().With("sink", Type),
		now:     time.Now,
		writers: map[sink.Kind]*writer{},
	}
	for _, k := range sink.Kinds() {
		w, err := openWriter(s, k)
		if err != nil {
			_ = s.Close(context.Background())
			return nil, fmt.Errorf("file sink: %s: %w", k, err)
		}
		s.writers[k] = w
	}
	return s, nil
}

// Dir is the directory the sink writes to.
func (s *Sink) Dir() string { return s.dir }

// WriteBatch appends the records not written before to the current file of
// their stream, syncs it and the index, and only then returns. A record that
// is not one JSON document fails permanently.
func (s *Sink) WriteBatch(ctx context.Context, batch []sink.Record) error {
	be := sink.NewBatchError()
	for _, k := range sink.Kinds() {
		w := s.writers[k]
		if w == nil {
			continue
		}
		if err := w.write(batch, be); err != nil {
			return err
		}
	}
	for i, r := range batch {
		if r.Kind != sink.KindEvents && r.Kind != sink.KindAlerts {
			be.Failed(i, sink.Permanent(fmt.Errorf("record %s: unknown stream kind %d", r.ID, r.Kind)))
		}
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

// ObserveConsumer forgets the sequences at or below the consumer's ack
// floor once that floor is pruneLag old: JetStream will not deliver them
// again, even after a crash of its own.
func (s *Sink) ObserveConsumer(st sink.ConsumerStatus) {
	if w := s.writers[st.Kind]; w != nil {
		w.prune(st.AckFloor)
	}
}

// Close closes the files and the indexes. It writes nothing: what was
// reported written is already durable. It is safe to call twice.
func (s *Sink) Close(context.Context) error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, w := range s.writers {
			errs = append(errs, w.close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// writer owns one stream's files and index.
type writer struct {
	s    *Sink
	kind sink.Kind
	// nameRE matches the stream's data files; group 1 is the file number.
	nameRE *regexp.Regexp

	mu      sync.Mutex
	closed  bool
	journal *journal
	written seqSet // sequences in the files
	f       *os.File
	name    string    // current file's base name; "" when none is open
	size    int64     // its committed size
	opened  time.Time // when it was created
	number  int       // the last file number used
	broken  bool      // a failed write may have left bytes past size

	// Scratch, reused.
	buf     []byte
	pending seqSet
	idx     []int

	// floors are the ack floors reported and not yet pruned through, oldest
	// first (see pruneLag).
	floors []floorSeen
}

// floorSeen is an ack floor and when it was reported.
type floorSeen struct {
	floor uint64
	at    time.Time
}

// pruneLag is how long an ack floor must have been known before the
// sequences at or below it are forgotten. nats-server writes a consumer's
// state to disk after it has taken the acks (and reported the floor that
// includes them): a server killed in between comes back with an older ack
// floor and redelivers what was acknowledged since — seen in the fault
// suite's nats-server kills, three alerts written twice. Remembering a
// floor's sequences this long lets those redeliveries be recognised. Two
// minutes is nats-server's default sync_interval, the longest its consumer
// state on disk can lag behind it.
const pruneLag = 2 * time.Minute

func openWriter(s *Sink, k sink.Kind) (*writer, error) {
	w := &writer{
		s:      s,
		kind:   k,
		nameRE: regexp.MustCompile(`^` + k.String() + `-\d{8}T\d{6}Z-(\d{6,})\.jsonl$`),
	}
	j, st, err := openJournal(filepath.Join(s.dir, indexDir, k.String()+".journal"), s.cfg.Fsync)
	if err != nil {
		return nil, err
	}
	w.journal, w.written = j, st.written
	if err := w.recover(st); err != nil {
		_ = j.close()
		return nil, err
	}
	return w, nil
}

// recover makes the files agree with the index: the tail of the last
// committed file past its committed size, and any file created after it,
// hold records never reported written (never acknowledged, so they will be
// redelivered); they are removed so that redelivery does not duplicate them.
func (w *writer) recover(st journalState) error {
	entries, err := os.ReadDir(w.s.dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", w.s.dir, err)
	}
	type dataFile struct {
		name   string
		number int
	}
	var files []dataFile
	for _, e := range entries {
		m := w.nameRE.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		files = append(files, dataFile{e.Name(), n})
	}
	slices.SortFunc(files, func(a, b dataFile) int { return a.number - b.number })

	lastNumber := -1
	if st.found && st.file != "" {
		if m := w.nameRE.FindStringSubmatch(st.file); m != nil {
			lastNumber, _ = strconv.Atoi(m[1])
		}
	}
	for _, f := range files {
		path := filepath.Join(w.s.dir, f.name)
		switch {
		case f.name == st.file:
			if err := w.truncateTail(path, st.size); err != nil {
				return err
			}
		case lastNumber >= 0 && f.number > lastNumber:
			w.s.log.Warn("removing file with no committed record", "stream", w.kind.Stream(), "file", f.name)
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove uncommitted %s: %w", path, err)
			}
			continue
		}
		w.number = max(w.number, f.number)
	}
	w.number = max(w.number, lastNumber)
	return nil
}

func (w *writer) truncateTail(path string, committed int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	switch {
	case fi.Size() > committed:
		w.s.log.Info("dropping uncommitted tail", "stream", w.kind.Stream(), "file", filepath.Base(path),
			"bytes", fi.Size()-committed)
		if err := os.Truncate(path, committed); err != nil {
			return fmt.Errorf("truncate %s to its committed size: %w", path, err)
		}
	case fi.Size() < committed:
		w.s.log.Warn("file shorter than its committed size: records were lost (was fsync off during a power loss?)",
			"stream", w.kind.Stream(), "file", filepath.Base(path), "size", fi.Size(), "committed", committed)
	}
	return nil
}

// write writes the records of batch of w's kind. Records it rejects for good
// go into be; an error means none of them was written (all retryable).
func (w *writer) write(batch []sink.Record, be *sink.BatchError) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf, w.idx = w.buf[:0], w.idx[:0]
	w.pending.reset()
	for i := range batch {
		r := &batch[i]
		if r.Kind != w.kind {
			continue
		}
		if r.Seq != 0 && (w.written.has(r.Seq) || w.pending.has(r.Seq)) {
			continue // written before the crash or redelivery: acknowledge, do not repeat
		}
		if !gjson.ValidBytes(r.Data) {
			be.Failed(i, sink.Permanent(fmt.Errorf("record %s: not a JSON document", r.ID)))
			continue
		}
		if bytes.IndexByte(r.Data, '\n') >= 0 {
			// Valid JSON with newlines between tokens: one line it must be.
			var c bytes.Buffer
			if err := json.Compact(&c, r.Data); err != nil {
				be.Failed(i, sink.Permanent(fmt.Errorf("record %s: %w", r.ID, err)))
				continue
			}
			w.buf = append(w.buf, c.Bytes()...)
		} else {
			w.buf = append(w.buf, r.Data...)
		}
		w.buf = append(w.buf, '\n')
		w.idx = append(w.idx, i)
		if r.Seq != 0 {
			w.pending.add(r.Seq)
		}
	}
	if len(w.idx) == 0 {
		return nil
	}
	if w.closed {
		return errors.New("file sink: write after Close")
	}
	if err := w.commit(); err != nil {
		return fmt.Errorf("file sink: %s: %w", w.kind, err)
	}
	w.written.union(&w.pending)
	w.written.capRanges(maxRanges)
	return nil
}

// commit appends w.buf to the current file and records it in the index. On
// error the file is cut back to its committed size.
func (w *writer) commit() error {
	if w.broken {
		if err := w.repair(); err != nil {
			return err
		}
	}
	now := w.s.now()
	if w.f != nil && w.size > 0 &&
		(w.size+int64(len(w.buf)) > int64(w.s.cfg.MaxFileBytes) || now.Sub(w.opened) >= w.s.cfg.MaxFileAge) {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	if w.f == nil {
		if err := w.create(now); err != nil {
			return err
		}
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return w.undo(fmt.Errorf("write %s: %w", w.name, err))
	}
	if w.s.cfg.Fsync {
		if err := w.f.Sync(); err != nil {
			return w.undo(fmt.Errorf("sync %s: %w", w.name, err))
		}
	}
	size := w.size + int64(len(w.buf))
	if err := w.journal.commit(w.name, size, &w.pending); err != nil {
		return w.undo(err)
	}
	w.size = size
	if w.journal.size > compactAt {
		if err := w.journal.compact(w.name, w.size, &w.written); err != nil {
			// The commit stands; a journal that could not be compacted
			// still holds the truth.
			w.s.log.Warn("compact index", "stream", w.kind.Stream(), "err", err)
		}
	}
	return nil
}

// undo cuts the file back to its committed size after a failed write.
func (w *writer) undo(cause error) error {
	if err := w.repair(); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// repair cuts the current file back to its committed size; until it
// succeeds every write fails and the file is not rotated, so no file but the
// current one can hold uncommitted bytes.
func (w *writer) repair() error {
	if err := w.f.Truncate(w.size); err != nil {
		w.broken = true
		return fmt.Errorf("cut %s back to %d bytes: %w", w.name, w.size, err)
	}
	if _, err := w.f.Seek(w.size, 0); err != nil {
		w.broken = true
		return fmt.Errorf("seek %s: %w", w.name, err)
	}
	w.broken = false
	return nil
}

func (w *writer) create(now time.Time) error {
	w.number++
	name := fmt.Sprintf("%s-%s-%06d.jsonl", w.kind, now.UTC().Format("20060102T150405Z"), w.number)
	f, err := os.OpenFile(filepath.Join(w.s.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if w.s.cfg.Fsync {
		if err := syncDir(w.s.dir); err != nil {
			_ = f.Close()
			_ = os.Remove(filepath.Join(w.s.dir, name))
			return err
		}
	}
	w.f, w.name, w.size, w.opened = f, name, 0, now
	return nil
}

// rotate closes the current file (already synced up to its last commit) and
// compacts the index, which no longer needs the file's commit lines.
func (w *writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", w.name, err)
	}
	w.f = nil
	if err := w.journal.compact(w.name, w.size, &w.written); err != nil {
		w.s.log.Warn("compact index", "stream", w.kind.Stream(), "err", err)
	}
	return nil
}

func (w *writer) prune(floor uint64) {
	now := w.s.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.floors = append(w.floors, floorSeen{floor: floor, at: now})
	var through uint64
	k := 0
	for k < len(w.floors) && now.Sub(w.floors[k].at) >= pruneLag {
		through = max(through, w.floors[k].floor)
		k++
	}
	w.floors = append(w.floors[:0], w.floors[k:]...)
	if through > 0 {
		w.written.pruneThrough(through)
	}
}

func (w *writer) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	if w.f != nil {
		if err := w.f.Close(); err != nil && !errors.Is(err, fs.ErrClosed) {
			errs = append(errs, fmt.Errorf("close %s: %w", w.name, err))
		}
		w.f = nil
	}
	errs = append(errs, w.journal.close())
	return errors.Join(errs...)
}
