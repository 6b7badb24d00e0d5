package procwatch

import (
	"errors"
	"path/filepath"
	"strconv"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the section sits under in a collector's config.
const ConfigKey = "procwatch"

// Config is what a user writes about the runtime sidecar collector.
type Config struct {
	// ProcRoot is where procfs is mounted.
	ProcRoot string `yaml:"proc_root"`
	// PollInterval is how often /proc is scanned for new processes and
	// sockets. A process that starts and ends between two scans is missed
	// (docs/BENCHMARKS.md has the share seen per interval).
	PollInterval time.Duration `yaml:"poll_interval"`
	// NetlinkProcConnector uses the kernel's process events connector for
	// exec events with no misses when it can be opened (CAP_NET_ADMIN in the
	// initial namespaces: a node agent, not a sidecar); polling goes on
	// either way.
	NetlinkProcConnector bool `yaml:"netlink_proc_connector"`
	// Network turns socket reporting (listeners, new connections) on.
	Network bool `yaml:"network"`
	// Files are files or directories (their direct entries) watched with
	// inotify; changes are reported with the content's SHA-256.
	Files []string `yaml:"files"`
	// MaxHashBytes caps the size of a file that is hashed; larger files are
	// reported with their size and no hash.
	MaxHashBytes config.ByteSize `yaml:"max_hash_bytes"`
	// MaxArgs and MaxArgBytes bound the argv kept per process.
	MaxArgs     int `yaml:"max_args"`
	MaxArgBytes int `yaml:"max_arg_bytes"`
	// CapabilityInterval is how often what the collector can see is
	// re-assessed; a capabilities event is published when it changes.
	CapabilityInterval time.Duration `yaml:"capability_interval"`
}

// NewDefaultConfig polls /proc every 100 ms with sockets on and no file
// watches.
func NewDefaultConfig() Config {
	return Config{
		ProcRoot:             "/proc",
		PollInterval:         100 * time.Millisecond,
		NetlinkProcConnector: true,
		Network:              true,
		MaxHashBytes:         64 * config.MiB,
		MaxArgs:              256,
		MaxArgBytes:          4096,
		CapabilityInterval:   30 * time.Second,
	}
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.ProcRoot == "" || !filepath.IsAbs(c.ProcRoot) {
		errs = append(errs, config.FieldError("proc_root", "must be an absolute path, got %q", c.ProcRoot))
	}
	if c.PollInterval < 5*time.Millisecond {
		errs = append(errs, config.FieldError("poll_interval", "must be at least 5ms, got %s", c.PollInterval))
	}
	for i, f := range c.Files {
		if f == "" || !filepath.IsAbs(f) {
			errs = append(errs, config.FieldError("files["+strconv.Itoa(i)+"]", "must be an absolute path, got %q", f))
		}
	}
	if c.MaxHashBytes < 1 {
		errs = append(errs, config.FieldError("max_hash_bytes", "must be > 0"))
	}
	if c.MaxArgs < 1 || c.MaxArgBytes < 16 {
		errs = append(errs, config.FieldError("max_args", "max_args must be >= 1 and max_arg_bytes >= 16"))
	}
	if c.CapabilityInterval < time.Second {
		errs = append(errs, config.FieldError("capability_interval", "must be at least 1s, got %s", c.CapabilityInterval))
	}
	return errors.Join(errs...)
}
