package docker

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the section sits under in a collector's config.
const ConfigKey = "docker"

// Config is what a user writes about the Docker events source.
type Config struct {
	// Socket is the engine's unix socket.
	Socket string `yaml:"socket"`
	// Types limits the event types (container, image, network, volume,
	// daemon, plugin, service, node, secret, config); empty: all.
	Types []string `yaml:"types"`
	// DataDir holds the checkpoint (the time of the last acknowledged event).
	DataDir string `yaml:"data_dir"`
	// Lookback is how far back to start when there is no checkpoint (the
	// engine keeps its last 256 events); 0: from now.
	Lookback time.Duration `yaml:"lookback"`
	// Retry is the backoff between reconnection attempts.
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	// MaxEventBytes caps one event; a larger one is dead-lettered.
	MaxEventBytes config.ByteSize `yaml:"max_event_bytes"`
	// CheckpointInterval is how often the position is written (always also
	// at shutdown and on reconnect).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// NewDefaultConfig follows /var/run/docker.sock from now.
func NewDefaultConfig() Config {
	return Config{
		Socket:             "/var/run/docker.sock",
		DataDir:            ".data/collectors/docker",
		RetryInitial:       250 * time.Millisecond,
		RetryMax:           10 * time.Second,
		MaxEventBytes:      1 * config.MiB,
		CheckpointInterval: time.Second,
	}
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Socket == "" || !filepath.IsAbs(c.Socket) {
		errs = append(errs, config.FieldError("socket", "must be an absolute path, got %q", c.Socket))
	}
	if c.DataDir == "" {
		errs = append(errs, config.FieldError("data_dir", "must be set: the checkpoint lives there"))
	}
	if c.Lookback < 0 {
		errs = append(errs, config.FieldError("lookback", "must be >= 0"))
	}
	if c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial {
		errs = append(errs, config.FieldError("retry_initial", "must be > 0 and <= retry_max"))
	}
	if c.MaxEventBytes < 1*config.KiB {
		errs = append(errs, config.FieldError("max_event_bytes", "must be at least 1KiB"))
	}
	if c.CheckpointInterval < 0 {
		errs = append(errs, config.FieldError("checkpoint_interval", "must be >= 0"))
	}
	return errors.Join(errs...)
}
