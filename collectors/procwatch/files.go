package procwatch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fileWatcher reports changes under the configured paths with content
// hashes. It watches directories (a configured file through its parent,
// so that a file replaced by rename is still followed).
type fileWatcher struct {
	w        *fsnotify.Watcher
	log      *slog.Logger
	maxHash  int64
	dirs     map[string]bool // directories whose every entry is watched
	files    map[string]bool // single files watched through their parent
	known    map[string]fileState
	pending  map[string]fsnotify.Op
	watched  []string
	failures []string
	rescan   bool
}

type fileState struct {
	sha  string
	mode fs.FileMode
	size int64
}

func newFileWatcher(paths []string, maxHash int64, log *slog.Logger) (*fileWatcher, error) {
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return nil, fmt.Errorf("procwatch: inotify: %w", err)
	}
	fw := &fileWatcher{w: w, log: log, maxHash: maxHash, dirs: map[string]bool{}, files: map[string]bool{},
		known: map[string]fileState{}, pending: map[string]fsnotify.Op{}}
	for _, p := range paths {
		p = filepath.Clean(p)
		fi, err := os.Stat(p)
		target := p
		switch {
		case err == nil && fi.IsDir():
			fw.dirs[p] = true
		default:
			// A file, or a path that does not exist yet: watch the parent.
			fw.files[p] = true
			target = filepath.Dir(p)
		}
		if err := w.Add(target); err != nil {
			fw.failures = append(fw.failures, p+": "+err.Error())
			continue
		}
		fw.watched = append(fw.watched, p)
	}
	fw.baseline()
	return fw, nil
}

func (fw *fileWatcher) close() { fw.w.Close() }

// baseline hashes every watched file, without reporting.
func (fw *fileWatcher) baseline() {
	for _, p := range fw.all() {
		if st, ok := fw.state(p); ok {
			fw.known[p] = st
		}
	}
}

// all lists the files currently under the watched paths.
func (fw *fileWatcher) all() []string {
	var out []string
	for d := range fw.dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	for f := range fw.files {
		out = append(out, f)
	}
	return out
}

func (fw *fileWatcher) relevant(p string) bool {
	return fw.files[p] || fw.dirs[filepath.Dir(p)]
}

// state hashes p; ok is false when it does not exist.
func (fw *fileWatcher) state(p string) (fileState, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return fileState{}, false
	}
	st := fileState{mode: fi.Mode(), size: fi.Size()}
	if fi.Mode().IsRegular() && fi.Size() <= fw.maxHash {
		st.sha, _ = hashFile(p, fw.maxHash)
	}
	return st, true
}

func hashFile(p string, limit int64) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, limit+1)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// poll drains the inotify events and returns the changes since the last
// call (writes coalesced per path).
func (fw *fileWatcher) poll() []fileEvent {
	for {
		select {
		case ev, ok := <-fw.w.Events:
			if !ok {
				return nil
			}
			if fw.relevant(filepath.Clean(ev.Name)) {
				fw.pending[filepath.Clean(ev.Name)] |= ev.Op
			}
			continue
		case err, ok := <-fw.w.Errors:
			if ok {
				// An overflowed queue lost events: compare everything.
				fw.log.Warn("file watch error; rescanning the watched files", "error", err)
				fw.rescan = true
			}
			continue
		default:
		}
		break
	}
	if fw.rescan {
		fw.rescan = false
		for _, p := range fw.all() {
			fw.pending[p] |= fsnotify.Write
		}
		for p := range fw.known {
			fw.pending[p] |= fsnotify.Write
		}
	}
	if len(fw.pending) == 0 {
		return nil
	}
	paths := make([]string, 0, len(fw.pending))
	for p := range fw.pending {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var out []fileEvent
	for _, p := range paths {
		if ev, ok := fw.change(p, fw.pending[p]); ok {
			out = append(out, ev)
		}
		delete(fw.pending, p)
	}
	return out
}

// change compares p with what was known of it.
func (fw *fileWatcher) change(p string, op fsnotify.Op) (fileEvent, bool) {
	prev, had := fw.known[p]
	cur, has := fw.state(p)
	ev := fileEvent{Kind: KindFileChange, Format: Format, Time: now(), File: fileInfo{Path: p, PreviousSHA256: prev.sha}}
	switch {
	case !has && !had:
		return ev, false // created and removed between two polls, or never there
	case !has:
		delete(fw.known, p)
		ev.File.Op = "remove"
		if op.Has(fsnotify.Rename) {
			ev.File.Op = "rename"
		}
		return ev, true
	case !had:
		ev.File.Op = "create"
	case cur.sha != prev.sha || cur.size != prev.size:
		ev.File.Op = "write"
	case cur.mode != prev.mode:
		ev.File.Op = "chmod"
	default:
		return ev, false // touched, same content and mode
	}
	fw.known[p] = cur
	fw.describe(&ev, p, cur)
	return ev, true
}

func (fw *fileWatcher) describe(ev *fileEvent, p string, st fileState) {
	fi, err := os.Lstat(p)
	if err != nil {
		ev.Errors = append(ev.Errors, "stat: "+err.Error())
		return
	}
	size := fi.Size()
	ev.File.Size = &size
	ev.File.Mode = "0" + strconv.FormatUint(uint64(fi.Mode().Perm()), 8)
	ev.File.Mtime = fi.ModTime().UTC().Format(time.RFC3339Nano)
	switch {
	case fi.Mode().IsRegular():
		ev.File.Type = "file"
	case fi.IsDir():
		ev.File.Type = "dir"
	case fi.Mode()&fs.ModeSymlink != 0:
		ev.File.Type = "symlink"
	default:
		ev.File.Type = "other"
	}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid := int(sys.Uid), int(sys.Gid)
		ev.File.UID, ev.File.GID = &uid, &gid
	}
	ev.File.SHA256 = st.sha
	if fi.Mode().IsRegular() && st.sha == "" {
		if size > fw.maxHash {
			ev.Errors = append(ev.Errors, "sha256: larger than max_hash_bytes")
		} else if _, err := hashFile(p, fw.maxHash); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				ev.Errors = append(ev.Errors, "sha256: permission denied")
			} else {
				ev.Errors = append(ev.Errors, "sha256: "+err.Error())
			}
		}
	}
}
