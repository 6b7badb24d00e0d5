package spool

import (
	"errors"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the section sits under in a collector's config.
const ConfigKey = "spool"

// Fsync is when appended records are fsynced.
type Fsync string

// Fsync policies.
const (
	// FsyncAlways syncs every record before Put returns: nothing acknowledged
	// to a source is lost on a power cut; slowest.
	FsyncAlways Fsync = "always"
	// FsyncInterval syncs every fsync_interval: a power cut loses at most
	// that much (a process crash loses nothing: the page cache survives).
	FsyncInterval Fsync = "interval"
	// FsyncNever leaves it to the kernel.
	FsyncNever Fsync = "never"
)

// FullPolicy is what Put does when the spool is full.
type FullPolicy string

// Full policies.
const (
	// FullBlock makes the source wait until replay makes room
	// (backpressure: the tail stops reading, the webhook answers 503). No
	// record is lost. The default.
	FullBlock FullPolicy = "block"
	// FullDrop drops the record, counts it per source and reports the
	// count as a gap record, so that the loss is visible in the SIEM. For
	// sources that must never stall (a sidecar beside a latency-critical
	// workload). Gap records themselves are never dropped.
	FullDrop FullPolicy = "drop"
)

// Config is what a user writes about the spool.
type Config struct {
	// Dir holds the segment files and the cursor.
	Dir string `yaml:"dir"`
	// MaxBytes caps the unreplayed records on disk. When reached, Put
	// blocks (backpressure) until replay makes room.
	MaxBytes config.ByteSize `yaml:"max_bytes"`
	// SegmentBytes is the size at which a new segment file is started;
	// replayed segments are deleted whole.
	SegmentBytes config.ByteSize `yaml:"segment_bytes"`
	// Fsync is "always", "interval" or "never".
	Fsync Fsync `yaml:"fsync"`
	// FsyncInterval is the period of fsync: interval.
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// ReplayBatch is how many records are replayed before waiting for
	// their acknowledgements and moving the cursor.
	ReplayBatch int `yaml:"replay_batch"`
	// ReplayInterval is how often the spool checks whether NATS is back.
	ReplayInterval time.Duration `yaml:"replay_interval"`
	// FullPolicy is "block" (backpressure, the default) or "drop" (count
	// and report the loss as gap records).
	FullPolicy FullPolicy `yaml:"full_policy"`
	// GapInterval is how often counts of lost records (dropped, or lost to
	// spool corruption) are published as gap records; they are also
	// published at shutdown.
	GapInterval time.Duration `yaml:"gap_interval"`
}

// NewDefaultConfig returns a 256 MiB spool of 16 MiB segments under
// .data/collectors/spool, fsynced every second, replayed 256 records at a
// time, blocking sources when full, gaps reported every 30 s.
func NewDefaultConfig() Config {
	return Config{
		Dir:            ".data/collectors/spool",
		MaxBytes:       256 * config.MiB,
		SegmentBytes:   16 * config.MiB,
		Fsync:          FsyncInterval,
		FsyncInterval:  time.Second,
		ReplayBatch:    256,
		ReplayInterval: 250 * time.Millisecond,
		FullPolicy:     FullBlock,
		GapInterval:    30 * time.Second,
	}
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, config.FieldError("dir", "must be set"))
	}
	if c.MaxBytes < 64*config.KiB {
		errs = append(errs, config.FieldError("max_bytes", "must be at least 64KiB, got %s", c.MaxBytes))
	}
	if c.SegmentBytes < 4*config.KiB || c.SegmentBytes > c.MaxBytes {
		errs = append(errs, config.FieldError("segment_bytes", "must be between 4KiB and max_bytes (%s), got %s", c.MaxBytes, c.SegmentBytes))
	}
	switch c.Fsync {
	case FsyncAlways, FsyncNever:
	case FsyncInterval:
		if c.FsyncInterval < time.Millisecond {
			errs = append(errs, config.FieldError("fsync_interval", "must be at least 1ms, got %s", c.FsyncInterval))
		}
	default:
		errs = append(errs, config.FieldError("fsync", "must be %q, %q or %q, got %q", FsyncAlways, FsyncInterval, FsyncNever, c.Fsync))
	}
	if c.ReplayBatch < 1 || c.ReplayBatch > 65536 {
		errs = append(errs, config.FieldError("replay_batch", "must be between 1 and 65536, got %d", c.ReplayBatch))
	}
	if c.ReplayInterval < time.Millisecond {
		errs = append(errs, config.FieldError("replay_interval", "must be at least 1ms, got %s", c.ReplayInterval))
	}
	switch c.FullPolicy {
	case FullBlock, FullDrop:
	default:
		errs = append(errs, config.FieldError("full_policy", "must be %q or %q, got %q", FullBlock, FullDrop, c.FullPolicy))
	}
	if c.GapInterval < 100*time.Millisecond || c.GapInterval > time.Hour {
		errs = append(errs, config.FieldError("gap_interval", "must be between 100ms and 1h, got %s", c.GapInterval))
	}
	return errors.Join(errs...)
}
