package k8saudit

import (
	"errors"
	"path/filepath"
	"strconv"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the section sits under in a collector's config.
const ConfigKey = "k8s_audit_file"

// StartAt says where to begin a file the checkpoint does not know.
type StartAt string

// StartAt values.
const (
	StartBeginning StartAt = "beginning"
	StartEnd       StartAt = "end"
)

// Config is what a user writes about the audit log tail.
type Config struct {
	// Paths are the live audit log files to follow; shell patterns
	// (filepath.Match) are expanded on every poll, so files that appear
	// later are picked up. Match live files only, not their rotated copies
	// (audit.log, not audit*.log): a rotated copy is followed by the file
	// it was rotated from.
	Paths []string `yaml:"paths"`
	// DataDir holds the checkpoint.
	DataDir string `yaml:"data_dir"`
	// StartAt is where to begin a file with no checkpoint when the tail
	// starts: "beginning" or "end". Files that appear later are always read
	// from the beginning.
	StartAt StartAt `yaml:"start_at"`
	// PollInterval is how often files are checked for new lines and rotation.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RotateWait is how long a renamed file is kept open after rotation for
	// lines its writer still had buffered, before the tail moves on to the
	// new file.
	RotateWait time.Duration `yaml:"rotate_wait"`
	// MaxLineBytes is the longest line read; a longer one is dead-lettered
	// (a sample of it) and skipped.
	MaxLineBytes config.ByteSize `yaml:"max_line_bytes"`
	// CheckpointInterval is how often positions are written (always also at
	// shutdown). A crash re-sends at most this much, as duplicates JetStream
	// drops.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// NewDefaultConfig follows /var/log/kubernetes/audit/audit.log from its
// beginning, polling every 250 ms.
func NewDefaultConfig() Config {
	return Config{
		Paths:              []string{"/var/log/kubernetes/audit/audit.log"},
		DataDir:            ".data/collectors/k8s_audit_file",
		StartAt:            StartBeginning,
		PollInterval:       250 * time.Millisecond,
		RotateWait:         time.Second,
		MaxLineBytes:       4 * config.MiB,
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
	if c.RotateWait < 0 {
		errs = append(errs, config.FieldError("rotate_wait", "must be >= 0, got %s", c.RotateWait))
	}
	if c.MaxLineBytes < 1*config.KiB || c.MaxLineBytes > 64*config.MiB {
		errs = append(errs, config.FieldError("max_line_bytes", "must be between 1KiB and 64MiB, got %s", c.MaxLineBytes))
	}
	if c.CheckpointInterval < 0 {
		errs = append(errs, config.FieldError("checkpoint_interval", "must be >= 0, got %s", c.CheckpointInterval))
	}
	return errors.Join(errs...)
}
