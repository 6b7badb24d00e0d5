package replay

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/atomicfile"
)

// checkpointFile is the name of the checkpoint under the data dir.
const checkpointFile = "checkpoint.json"

// checkpointVersion is the format version of the checkpoint file.
const checkpointVersion = 1

// checkpoint is the durable state of one replay instance: who it is and the
// position of the next record to publish. Everything before it is
// acknowledged by JetStream.
type checkpoint struct {
	Version int `json:"version"`
	// InstanceID seeds every identity the replay derives. A new data dir is
	// a new instance: its events are new events.
	InstanceID string `json:"instance_id"`
	// Samples is the fingerprint of the sample set the position refers to.
	Samples string `json:"samples"`
	// Loop and Index are the position of the next record.
	Loop  int64 `json:"loop"`
	Index int   `json:"index"`
	// Published counts records acknowledged over the instance's life.
	Published int64     `json:"published"`
	Updated   time.Time `json:"updated"`
}

// loadCheckpoint reads dir's checkpoint; a missing one starts a new instance.
func loadCheckpoint(dir string) (checkpoint, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		id, err := newInstanceID()
		if err != nil {
			return checkpoint{}, false, err
		}
		return checkpoint{Version: checkpointVersion, InstanceID: id}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("read replay checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return checkpoint{}, false, fmt.Errorf("read replay checkpoint %s: %w (delete it to start a new replay instance)", filepath.Join(dir, checkpointFile), err)
	}
	if c.Version != checkpointVersion || c.InstanceID == "" || c.Loop < 0 || c.Index < 0 {
		return checkpoint{}, false, fmt.Errorf("replay checkpoint %s: unsupported version %d or invalid position (delete it to start a new replay instance)", filepath.Join(dir, checkpointFile), c.Version)
	}
	return c, true, nil
}

func newInstanceID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("replay instance id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// save writes c to dir atomically: a temporary file, fsynced, renamed over
// the old one, and the directory fsynced, so a crash leaves the old
// checkpoint or the new one, never a torn one.
func (c checkpoint) save(dir string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode replay checkpoint: %w", err)
	}
	return atomicfile.WriteFile(dir, checkpointFile, append(b, '\n'))
}
