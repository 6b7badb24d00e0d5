package file

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// journal is the durable index of one stream's files: an append-only file
// of lines, each a commit (what one batch made durable) or a snapshot (the
// whole state, written when the journal is compacted):
//
//	c <data file> <its committed size> <sequences written by the batch>
//	s <data file> <its committed size> <every sequence still remembered>
//
// Sequences are ranges, "1-500,502-730". A line counts only once it ends in
// a newline: a torn last line is a commit that never happened.
type journal struct {
	path  string
	f     *os.File
	size  int64
	fsync bool
	buf   []byte
}

// journalState is what a journal says on opening.
type journalState struct {
	file    string // the data file of the last commit; "" if none
	size    int64  // its committed size
	written seqSet // sequences written and not yet pruned
	found   bool   // the journal existed
}

func openJournal(path string, fsync bool) (*journal, journalState, error) {
	var st journalState
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, st, fmt.Errorf("read index %s: %w", path, err)
	default:
		st.found = true
	}
	complete := bytes.LastIndexByte(data, '\n') + 1
	for lineNo, line := range strings.Split(string(data[:complete]), "\n") {
		if line == "" {
			continue
		}
		if err := st.apply(line); err != nil {
			// Not a torn write (that would be the unterminated tail): the
			// index is damaged, and guessing could truncate acked data.
			return nil, st, fmt.Errorf("index %s line %d: %w (move the index away to start over; records may then be written twice)", path, lineNo+1, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return nil, st, fmt.Errorf("open index %s: %w", path, err)
	}
	if complete < len(data) {
		if err := f.Truncate(int64(complete)); err != nil {
			_ = f.Close()
			return nil, st, fmt.Errorf("drop torn tail of index %s: %w", path, err)
		}
	}
	if _, err := f.Seek(int64(complete), 0); err != nil {
		_ = f.Close()
		return nil, st, fmt.Errorf("seek index %s: %w", path, err)
	}
	if !st.found && fsync {
		if err := syncDir(filepath.Dir(path)); err != nil {
			_ = f.Close()
			return nil, st, err
		}
	}
	return &journal{path: path, f: f, size: int64(complete), fsync: fsync}, st, nil
}

func (st *journalState) apply(line string) error {
	fields := strings.Fields(line)
	if len(fields) != 4 || (fields[0] != "c" && fields[0] != "s") {
		return fmt.Errorf("malformed line %q", line)
	}
	size, err := strconv.ParseInt(fields[2], 10, 64)
	if err != nil || size < 0 {
		return fmt.Errorf("bad size in %q", line)
	}
	seqs, err := parseSeqSet(fields[3])
	if err != nil {
		return err
	}
	if fields[0] == "s" {
		st.written = seqs
	} else {
		st.written.union(&seqs)
	}
	st.file, st.size = fields[1], size
	if st.file == "-" {
		st.file = ""
	}
	return nil
}

func (j *journal) appendLine(kind byte, file string, size int64, seqs *seqSet) []byte {
	b := append(j.buf[:0], kind, ' ')
	if file == "" {
		file = "-"
	}
	b = append(b, file...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, size, 10)
	b = append(b, ' ')
	b = seqs.appendText(b)
	j.buf = append(b, '\n')
	return j.buf
}

// commit records that file is durable up to size and that the batch wrote
// seqs; it returns once the record is durable (when fsync is on).
func (j *journal) commit(file string, size int64, seqs *seqSet) error {
	line := j.appendLine('c', file, size, seqs)
	if _, err := j.f.Write(line); err != nil {
		return j.undo(fmt.Errorf("write index %s: %w", j.path, err))
	}
	if j.fsync {
		if err := j.f.Sync(); err != nil {
			return j.undo(fmt.Errorf("sync index %s: %w", j.path, err))
		}
	}
	j.size += int64(len(line))
	return nil
}

// undo drops a partly written commit so the next one does not follow a torn
// line.
func (j *journal) undo(cause error) error {
	if err := j.f.Truncate(j.size); err != nil {
		return errors.Join(cause, fmt.Errorf("drop failed commit from index %s: %w", j.path, err))
	}
	if _, err := j.f.Seek(j.size, 0); err != nil {
		return errors.Join(cause, fmt.Errorf("seek index %s: %w", j.path, err))
	}
	return cause
}

// compact replaces the journal with one snapshot line, atomically (write
// aside, sync, rename, sync the directory).
func (j *journal) compact(file string, size int64, written *seqSet) error {
	tmp := j.path + ".tmp"
	line := j.appendLine('s', file, size, written)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("compact index %s: %w", j.path, err)
	}
	_, werr := f.Write(line)
	if werr == nil && j.fsync {
		werr = f.Sync()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact index %s: %w", j.path, err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact index %s: %w", j.path, err)
	}
	if j.fsync {
		if err := syncDir(filepath.Dir(j.path)); err != nil {
			return err
		}
	}
	// The old descriptor points at the replaced file; appends go to the new one.
	nf, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("reopen index %s: %w", j.path, err)
	}
	_ = j.f.Close() // the replaced file: nothing left to flush
	j.f, j.size = nf, int64(len(line))
	return nil
}

func (j *journal) close() error {
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("close index %s: %w", j.path, err)
	}
	return nil
}

// syncDir makes the creation, removal or renaming of files in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
