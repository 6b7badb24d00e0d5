package replay

import (
	"errors"
	"strconv"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the replay section sits under in crowsnest.yaml.
const ConfigKey = "replay"

// Config is what a user writes about the replay source.
type Config struct {
	// Rate is how many records per second to publish; 0 publishes as fast as
	// the bus takes them.
	Rate float64 `yaml:"rate"`
	// Loops stops the replay once this many passes over the sample are done,
	// counted over the life of the data dir (a restart continues the count);
	// 0 loops forever.
	Loops int `yaml:"loops"`
	// MaxEvents stops this run after publishing this many records; 0 is no
	// limit. With a restart, the next run publishes up to MaxEvents more.
	MaxEvents int64 `yaml:"max_events"`
	// DataDir holds the checkpoint and the replay's instance id. Keep it
	// between runs: a new one starts a new instance, whose events are new
	// events.
	DataDir string `yaml:"data_dir"`
	// Files replaces the bundled sample with JSON-lines files, each of one
	// source. Records of all files are merged by their timestamps.
	Files []FileConfig `yaml:"files"`
	// BatchSize caps how many records are published before waiting for their
	// acknowledgement and moving the checkpoint.
	BatchSize int `yaml:"batch_size"`
	// CheckpointInterval is how often the position is written (always also
	// at the end of a run). A crash re-sends at most this much, which
	// JetStream drops as duplicates.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// FileConfig is one file to replay.
type FileConfig struct {
	// Source is the source its records are: k8s_audit, falco, tetragon, or
	// any other source (replayed verbatim, ids from the position).
	Source string `yaml:"source"`
	// Path of a file with one JSON record per line.
	Path string `yaml:"path"`
}

// NewDefaultConfig returns the defaults: the bundled sample at 50 records/s,
// forever, checkpointed every second under .data/replay.
func NewDefaultConfig() Config {
	return Config{
		Rate:               50,
		DataDir:            ".data/replay",
		BatchSize:          256,
		CheckpointInterval: time.Second,
	}
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Rate < 0 {
		errs = append(errs, config.FieldError("rate", "must be >= 0 (0 is as fast as possible), got %g", c.Rate))
	}
	if c.Loops < 0 {
		errs = append(errs, config.FieldError("loops", "must be >= 0 (0 loops forever), got %d", c.Loops))
	}
	if c.MaxEvents < 0 {
		errs = append(errs, config.FieldError("max_events", "must be >= 0 (0 is no limit), got %d", c.MaxEvents))
	}
	if c.DataDir == "" {
		errs = append(errs, config.FieldError("data_dir", "must be set: the checkpoint lives there"))
	}
	if c.BatchSize < 1 || c.BatchSize > 65536 {
		errs = append(errs, config.FieldError("batch_size", "must be between 1 and 65536, got %d", c.BatchSize))
	}
	if c.CheckpointInterval < 0 {
		errs = append(errs, config.FieldError("checkpoint_interval", "must be >= 0 (0 checkpoints after every batch), got %s", c.CheckpointInterval))
	}
	for i, f := range c.Files {
		switch {
		case f.Source == topology.SourceCollector:
			// Replaying gap records would forge the collectors' own loss reports.
			errs = append(errs, config.FieldError(fieldPath(i, "source"), "%q is reserved for the collectors' own gap records", f.Source))
		case !topology.ValidSource(f.Source):
			errs = append(errs, config.FieldError(fieldPath(i, "source"), "unknown source %q (want one of %v)", f.Source, topology.Sources()))
		}
		if f.Path == "" {
			errs = append(errs, config.FieldError(fieldPath(i, "path"), "must be set"))
		}
	}
	return errors.Join(errs...)
}

func fieldPath(i int, key string) string {
	return "files[" + strconv.Itoa(i) + "]." + key
}
