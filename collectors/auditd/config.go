package auditd

import (
	"github.com/crowsnest-siem/crowsnest/collectors/internal/filetail"
)

// ConfigKey is the key the section sits under in a collector's config.
const ConfigKey = "auditd"

// Config is what a user writes about the auditd log tail: the file tail's
// keys (paths, data_dir, start_at, poll_interval, rotate_wait, flush_after,
// max_line_bytes, checkpoint_interval).
type Config struct {
	Files filetail.Config `yaml:",inline"`
}

// NewDefaultConfig follows /var/log/audit/audit.log.
func NewDefaultConfig() Config {
	fc := filetail.NewDefaultConfig("/var/log/audit/audit.log")
	fc.DataDir = ".data/collectors/auditd"
	return Config{Files: fc}
}

// Validate reports every invalid field.
func (c Config) Validate() error { return c.Files.Validate() }
