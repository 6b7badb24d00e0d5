package enrich

import (
	"errors"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// Config is what a user writes under the processor's `enrich:` key.
type Config struct {
	// Enabled turns the entity join on (the default).
	Enabled bool `yaml:"enabled"`
	// MaxEntries bounds each cache (containers, pods); the least recently
	// used entry goes first. A container is kept under its full and its
	// 12-character id, so it takes two entries.
	MaxEntries int `yaml:"max_entries"`
	// TTL is how long an entry lives after it was last learned: a
	// container's pod and image stay true for its life, but a stale entry
	// must not outlive a reused id for long.
	TTL time.Duration `yaml:"ttl"`
}

// Bounds Validate enforces, so that a typo cannot unbound the cache.
const (
	maxEntriesCeiling = 10_000_000
	maxTTL            = 30 * 24 * time.Hour
)

// NewDefaultConfig returns the defaults: on, 50,000 entries per cache, 24 h.
func NewDefaultConfig() Config {
	return Config{Enabled: true, MaxEntries: 50_000, TTL: 24 * time.Hour}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.MaxEntries < 1 || c.MaxEntries > maxEntriesCeiling {
		errs = append(errs, config.FieldError("max_entries", "must be between 1 and %d, got %d", maxEntriesCeiling, c.MaxEntries))
	}
	if c.TTL <= 0 || c.TTL > maxTTL {
		errs = append(errs, config.FieldError("ttl", "must be between 1ns and %s (e.g. 24h), got %s", maxTTL, c.TTL))
	}
	return errors.Join(errs...)
}
