package filetail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Handler turns lines into records. Handle gets complete lines (chunk ends
// in '\n', or, when final, wherever the file ends), adds records to b and
// returns how many bytes of chunk it consumed: a prefix ending at a line
// boundary. An unconsumed rest is offered again later with more data, or
// with final set once the file has been idle for flush_after or was
// rotated away; then everything must be consumed. Records added must lie
// within the consumed prefix (a call consuming nothing adds nothing).
// Records must not point
// into chunk after Handle returns unless b is waited for first (the tail
// does wait before reusing the buffer).
type Handler interface {
	Handle(ctx context.Context, b *publish.Batch, path string, chunk []byte, final bool) (consumed int, err error)
}

// Publisher is what the tail needs of the publisher.
type Publisher interface {
	NewBatch() *publish.Batch
}

var _ Publisher = (*publish.Publisher)(nil)

// Settings is what the code gives a Tailer.
type Settings struct {
	// Publisher takes the events. Required.
	Publisher Publisher
	// Handler makes records of lines. Required.
	Handler Handler
	// Source is the source name of dead-lettered overlong lines.
	Source string
	// Name names the tail in logs ("auditd", "json_lines").
	Name string
	// Logger; nil discards.
	Logger *slog.Logger
}

// Tailer follows files.
type Tailer struct {
	cfg    Config
	pub    Publisher
	h      Handler
	source string
	log    *slog.Logger
	buf    []byte // one read buffer for every file: files are served in turn
	cps    *checkpoints
	fols   []*follower
	// lastSave is when the checkpoint was last written.
	lastSave time.Time
}

// follower is one followed path and the file open for it.
type follower struct {
	path string
	f    *os.File // nil until the path exists
	id   fileID
	// offset is the byte offset after the last acknowledged line of f.
	offset int64
	// skipping is set inside a line longer than max_line_bytes whose head
	// was dead-lettered: the rest, up to the next newline, is skipped.
	skipping bool
	// rotatedAt is when the path was first seen to name another file than f.
	rotatedAt time.Time
	// heldSince is when the handler first left bytes unconsumed at offset.
	heldSince time.Time
}

// New validates cfg and returns a Tailer. Files are opened by Run.
func New(cfg Config, s Settings) (*Tailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("file tail config: %w", err)
	}
	if s.Publisher == nil {
		return nil, errors.New("file tail: Settings.Publisher is nil")
	}
	if s.Handler == nil || !topology.ValidSource(s.Source) {
		return nil, errors.New("file tail: Settings.Handler and a valid Settings.Source are required")
	}
	t := &Tailer{cfg: cfg, pub: s.Publisher, h: s.Handler, source: s.Source, log: s.Logger}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.log = t.log.With("component", s.Name, "source", s.Source)
	return t, nil
}

// Run follows the files until ctx ends, then writes the checkpoint, closes
// the files and returns ctx's error. Run may be called again (on this or a
// new Tailer over the same data dir) to go on where it stopped.
func (t *Tailer) Run(ctx context.Context) (err error) {
	cps, err := loadCheckpoints(t.cfg.DataDir)
	if err != nil {
		return err
	}
	t.cps = cps
	t.fols = nil
	t.buf = make([]byte, int(t.cfg.MaxLineBytes)+1)
	defer func() {
		for _, fl := range t.fols {
			if fl.f != nil {
				fl.f.Close()
			}
		}
		if serr := t.cps.save(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()

	t.discover(true)
	t.lastSave = time.Now()
	ticker := time.NewTicker(t.cfg.PollInterval)
	defer ticker.Stop()
	for {
		for _, fl := range t.fols {
			if err := t.serve(ctx, fl); err != nil {
				return err
			}
		}
		if err := t.maybeSave(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		t.discover(false)
	}
}

// discover adds a follower for every path the patterns match that has none.
func (t *Tailer) discover(starting bool) {
	for _, pattern := range t.cfg.Paths {
		matches, err := filepath.Glob(pattern)
		if err != nil { // Validate checked the patterns
			continue
		}
		if len(matches) == 0 && !hasMeta(pattern) {
			matches = []string{pattern} // follow it once it exists
		}
		for _, path := range matches {
			if slices.ContainsFunc(t.fols, func(fl *follower) bool { return fl.path == path }) {
				continue
			}
			fl := &follower{path: path}
			t.fols = append(t.fols, fl)
			t.open(fl, starting)
		}
	}
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// open opens fl's file where the checkpoint left it: the same file at its
// offset; the file the path named before a rotation that happened while we
// were down (found by inode), to drain it first; or a file we never saw, at
// its beginning (or end, at start-up with start_at: end).
func (t *Tailer) open(fl *follower, starting bool) {
	f, err := os.Open(fl.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.log.Warn("cannot open file", "path", fl.path, "error", err)
		}
		return
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		t.log.Warn("cannot stat file", "path", fl.path, "error", err)
		return
	}
	id := idOf(fi)
	cp, known := t.cps.get(fl.path)
	switch {
	case known && cp.File == id:
		fl.f, fl.id, fl.offset = f, id, cp.Offset
		if fi.Size() < cp.Offset {
			t.log.Warn("file is shorter than its checkpoint: truncated while stopped; reading from the start", "path", fl.path)
			fl.offset = 0
		}
	case known:
		if old := findByID(fl.path, cp.File); old != nil {
			f.Close()
			fl.f, fl.id, fl.offset = old, cp.File, cp.Offset
			t.log.Info("file was rotated while stopped; finishing the rotated file first", "path", fl.path, "rotated", old.Name())
			return
		}
		t.log.Warn("file was rotated while stopped and the rotated file is gone; lines written to it after the checkpoint are lost",
			"path", fl.path)
		fl.f, fl.id, fl.offset = f, id, 0
	default:
		fl.f, fl.id, fl.offset = f, id, 0
		if starting && t.cfg.StartAt == StartEnd {
			fl.offset = fi.Size()
		}
	}
	t.cps.set(fl.path, position{File: fl.id, Offset: fl.offset})
}

// findByID opens the file in path's directory whose identity is id, if any.
func findByID(path string, id fileID) *os.File {
	if id == (fileID{}) {
		return nil
	}
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || idOf(fi) != id {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil
		}
		// Check again on the open file: the name may have moved meanwhile.
		if ofi, err := f.Stat(); err == nil && idOf(ofi) == id {
			return f
		}
		f.Close()
	}
	return nil
}

// serve publishes fl's new complete lines, then checks for rotation.
func (t *Tailer) serve(ctx context.Context, fl *follower) error {
	if fl.f == nil {
		t.open(fl, false)
		if fl.f == nil {
			return nil
		}
	}
	for {
		n, err := t.readChunk(ctx, fl, false)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A long backlog is checkpointed as it goes, not only at its end.
		if err := t.maybeSave(); err != nil {
			return err
		}
	}
	return t.checkRotation(ctx, fl)
}

// maybeSave writes the checkpoint when checkpoint_interval has passed.
func (t *Tailer) maybeSave() error {
	if time.Since(t.lastSave) < t.cfg.CheckpointInterval {
		return nil
	}
	if err := t.cps.save(); err != nil {
		return err
	}
	t.lastSave = time.Now()
	return nil
}

// checkRotation notices a file replaced at fl's path (rename and create) or
// truncated in place (copytruncate).
func (t *Tailer) checkRotation(ctx context.Context, fl *follower) error {
	fi, err := os.Stat(fl.path)
	if err != nil {
		return nil // between rename and create, or deleted: keep reading what we have
	}
	if id := idOf(fi); id != fl.id && id != (fileID{}) {
		if fl.rotatedAt.IsZero() {
			fl.rotatedAt = time.Now()
			t.log.Info("file rotated; draining the old file", "path", fl.path)
		}
		if time.Since(fl.rotatedAt) < t.cfg.RotateWait {
			return nil
		}
		// The old file is done: a last line without a newline will never be
		// completed, so it is published as it is.
		for {
			n, err := t.readChunk(ctx, fl, true)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		fl.f.Close()
		fl.f, fl.rotatedAt, fl.skipping = nil, time.Time{}, false
		// Everything of the old file is acknowledged: the path's position
		// is now the start of the new one.
		t.cps.set(fl.path, position{File: id})
		t.open(fl, false)
		return nil
	}
	cur, err := fl.f.Stat()
	if err == nil && cur.Size() < fl.offset {
		t.log.Warn("file truncated (copytruncate); reading from the start", "path", fl.path, "size", cur.Size(), "offset", fl.offset)
		fl.offset, fl.skipping = 0, false
		t.cps.set(fl.path, position{File: fl.id, Offset: 0})
	}
	return nil
}

// readChunk reads from fl's offset, hands the complete lines to the
// handler in one batch, waits for their acknowledgement and moves the offset
// past what the handler consumed. It returns how many bytes it consumed.
// final also takes a last line without a newline and whatever the handler
// held back.
func (t *Tailer) readChunk(ctx context.Context, fl *follower, final bool) (int, error) {
	k, err := fl.f.ReadAt(t.buf, fl.offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read %s: %w", fl.path, err)
	}
	data := t.buf[:k]
	if k == 0 {
		fl.heldSince = time.Time{}
		return 0, nil
	}
	if fl.skipping {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			t.advance(fl, int64(k))
			return k, nil
		}
		fl.skipping = false
		t.advance(fl, int64(nl+1))
		return nl + 1, nil
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	if !final && !fl.heldSince.IsZero() && time.Since(fl.heldSince) >= t.cfg.FlushAfter {
		final = true // held back long enough: the rest is not coming
	}
	batch := t.pub.NewBatch()
	switch {
	case end > 0 && !(final && end < k):
	case k == len(t.buf) && end == 0:
		// No newline in max_line_bytes: dead-letter the head, skip the rest.
		if err := t.reject(ctx, batch, fl, data, fmt.Sprintf("line longer than max_line_bytes (%d)", t.cfg.MaxLineBytes)); err != nil {
			return 0, err
		}
		fl.skipping = true
		end = k
	case final:
		end = k
	default:
		return 0, nil // a partial line: wait for the rest
	}
	consumed := end
	if !fl.skipping {
		n, err := t.h.Handle(ctx, batch, fl.path, data[:end], final)
		if err == nil && n <= 0 && k == len(t.buf) && !final {
			// The buffer is full and the handler holds all of it back: no
			// more data can come into view, so what is there goes as is.
			n, err = t.h.Handle(ctx, batch, fl.path, data[:end], true)
		}
		if err != nil {
			batch.Seal()
			return 0, fmt.Errorf("publish %s: %w", fl.path, err)
		}
		consumed = min(max(n, 0), end)
	}
	if err := batch.Wait(ctx); err != nil {
		return 0, fmt.Errorf("publish %s: wait for acknowledgements: %w", fl.path, err)
	}
	if consumed < end {
		if fl.heldSince.IsZero() {
			fl.heldSince = time.Now()
		}
	} else {
		fl.heldSince = time.Time{}
	}
	t.advance(fl, int64(consumed))
	return consumed, nil
}

func (t *Tailer) reject(ctx context.Context, batch *publish.Batch, fl *follower, line []byte, reason string) error {
	rec := publish.Record{
		Source:   t.source,
		Data:     line,
		ID:       msgid.FromContent(t.source, line),
		Observed: time.Now(),
	}
	t.log.Warn("line rejected", "path", fl.path, "event_id", rec.ID, "reason", reason)
	if err := batch.AddDeadLetter(ctx, rec, fl.path+": "+reason); err != nil {
		batch.Seal()
		return fmt.Errorf("dead-letter a line of %s: %w", fl.path, err)
	}
	return nil
}

func (t *Tailer) advance(fl *follower, n int64) {
	fl.offset += n
	t.cps.set(fl.path, position{File: fl.id, Offset: fl.offset})
}
