package file

import (
	"errors"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Config is the file sink's config block.
type Config struct {
	// Dir holds the files; empty means <data dir>/files.
	Dir string `yaml:"dir"`
	// MaxFileBytes rotates a file once the next batch would take it past
	// this size (a single batch larger than this gets a file of its own).
	MaxFileBytes topology.ByteSize `yaml:"max_file_bytes"`
	// MaxFileAge rotates a file when a batch arrives after it has been open
	// this long. A file with nothing new is not rotated.
	MaxFileAge time.Duration `yaml:"max_file_age"`
	// Fsync makes every batch durable (file and index synced) before it is
	// reported written, and so before it is acknowledged. Off, a power loss
	// can lose acknowledged records.
	Fsync bool `yaml:"fsync"`
}

// NewDefaultConfig returns the defaults: 128 MiB or 1 h per file, fsync on.
func NewDefaultConfig() Config {
	return Config{
		MaxFileBytes: 128 * topology.MiB,
		MaxFileAge:   time.Hour,
		Fsync:        true,
	}
}

// Validate reports every invalid field, joined.
func (c Config) Validate() error {
	var errs []error
	if c.MaxFileBytes < 1*topology.KiB {
		errs = append(errs, sink.NewFieldError("max_file_bytes", "must be at least 1KiB, got %d", int64(c.MaxFileBytes)))
	}
	if c.MaxFileAge < time.Second {
		errs = append(errs, sink.NewFieldError("max_file_age", "must be at least 1s, got %s", c.MaxFileAge))
	}
	return errors.Join(errs...)
}
