package filetail

import (
	"errors"
	"path/filepath"
	"strconv"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// StartAt says where to begin a file the checkpoint does not know.
type StartAt string

// StartAt values.
const (
	StartBeginning StartAt = "beginning"
	StartEnd       StartAt = "end"
)

// Config is what a user writes about a tailed file source.
type Config struct {
	// Paths are the live files to follow; shell patterns are expanded on
	// every poll. Match live files only, not their rotated copies.
	Paths []string `yaml:"paths"`
	// DataDir holds the checkpoint.
	DataDir string `yaml:"data_dir"`
	// StartAt is where to begin a file with no checkpoint at start-up:
	// "beginning" or "end". Files that appear later are read from the
	// beginning.
	StartAt StartAt `yaml:"start_at"`
	// PollInterval is how often files are checked for new lines and
	// rotation.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RotateWait is how long a renamed file is still read after rotation.
	RotateWait time.Duration `yaml:"rotate_wait"`
	// FlushAfter is how long lines a source holds back (an incomplete
	// multi-line event) wait for the rest before they are handed on as
	// they are.
	FlushAfter time.Duration `yaml:"flush_after"`
	// MaxLineBytes is the longest line; a longer one is dead-lettered (a
	// sample) and skipped.
	MaxLineBytes config.ByteSize `yaml:"max_line_bytes"`
	// CheckpointInterval is how often positions are written (always also
	// at shutdown).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// NewDefaultConfig follows paths from their beginning, polling every 250 ms.
func NewDefaultConfig(paths ...string) Config {
	return Config{
		Paths:              paths,
		StartAt:            StartBeginning,
		PollInterval:       250 * time.Millisecond,
		RotateWait:         time.Second,
		FlushAfter:         2 * time.Second,
		MaxLineBytes:       1 * config.MiB,
		CheckpointInterval: time.Second,
	}
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if len(c.Paths) == 0 {
		errs = append(errs, config.FieldError("paths", "must name at least one file"))
	}
	for i, p := range c.Paths {
		if p == "" {
			errs = append(errs, config.FieldError("paths["+strconv.Itoa(i)+"]", "must not be empty"))
			continue
		}
		if _, err := filepath.Match(p, ""); err != nil {
			errs = append(errs, config.FieldError("paths["+strconv.Itoa(i)+"]", "bad pattern %q: %w", p, err))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, config.FieldError("data_dir", "must be set: the checkpoint lives there"))
	}
	if c.StartAt != StartBeginning && c.StartAt != StartEnd {
		errs = append(errs, config.FieldError("start_at", "must be %q or %q, got %q", StartBeginning, StartEnd, c.StartAt))
	}
	if c.PollInterval < time.Millisecond {
		errs = append(errs, config.FieldError("poll_interval", "must be at least 1ms, got %s", c.PollInterval))
	}
	if c.RotateWait < 0 || c.FlushAfter < 0 || c.CheckpointInterval < 0 {
		errs = append(errs, config.FieldError("rotate_wait", "rotate_wait, flush_after and checkpoint_interval must be >= 0"))
	}
	if c.MaxLineBytes < 1*config.KiB || c.MaxLineBytes > 64*config.MiB {
		errs = append(errs, config.FieldError("max_line_bytes", "must be between 1KiB and 64MiB, got %s", c.MaxLineBytes))
	}
	return errors.Join(errs...)
}
