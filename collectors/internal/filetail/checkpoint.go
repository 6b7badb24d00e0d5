package filetail

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/atomicfile"
)

const (
	checkpointFile    = "checkpoint.json"
	checkpointVersion = 1
)

// fileID identifies a file independently of its name.
type fileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// position is how far one followed path has been read and acknowledged.
type position struct {
	File fileID `json:"file"`
	// Offset is the byte offset after the last acknowledged line.
	Offset int64 `json:"offset"`
}

type checkpointData struct {
	Version int                 `json:"version"`
	Files   map[string]position `json:"files"`
}

// checkpoints is the durable position of every followed path.
type checkpoints struct {
	dir   string
	files map[string]position
	dirty bool
}

func loadCheckpoints(dir string) (*checkpoints, error) {
	c := &checkpoints{dir: dir, files: map[string]position{}}
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tail checkpoint: %w", err)
	}
	var d checkpointData
	if err := json.Unmarshal(b, &d); err != nil || d.Version != checkpointVersion {
		return nil, fmt.Errorf("tail checkpoint %s is unreadable or of another version (%v); delete it to read the files from the start",
			filepath.Join(dir, checkpointFile), err)
	}
	if d.Files != nil {
		c.files = d.Files
	}
	return c, nil
}

func (c *checkpoints) get(path string) (position, bool) {
	p, ok := c.files[path]
	return p, ok
}

func (c *checkpoints) set(path string, p position) {
	if c.files[path] != p {
		c.files[path] = p
		c.dirty = true
	}
}

// save writes the positions when they changed.
func (c *checkpoints) save() error {
	if !c.dirty {
		return nil
	}
	b, err := json.MarshalIndent(checkpointData{Version: checkpointVersion, Files: maps.Clone(c.files)}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode tail checkpoint: %w", err)
	}
	if err := atomicfile.WriteFile(c.dir, checkpointFile, append(b, '\n')); err != nil {
		return fmt.Errorf("write tail checkpoint: %w", err)
	}
	c.dirty = false
	return nil
}
