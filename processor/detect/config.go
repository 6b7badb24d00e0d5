package detect

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// Config is what a user writes under the processor's `detect:` key.
// Trusted registries are not here: the normalizer sets
// crowsnest.image.trusted from processor.normalize.trusted_registries, and
// the rules read that field.
type Config struct {
	// Enabled runs detection in the processor.
	Enabled bool `yaml:"enabled"`
	// Builtin loads the built-in rule pack.
	Builtin bool `yaml:"builtin"`
	// RulesDirs are directories of Sigma rules (*.yml, *.yaml, searched
	// recursively) loaded besides the built-in pack.
	RulesDirs []string `yaml:"rules_dirs"`
	// SuppressionWindow: after an alert of a rule about an entity, further
	// matches of that rule and entity within the window (event time) are
	// counted instead of raising alerts. 0 turns suppression off.
	SuppressionWindow time.Duration `yaml:"suppression_window"`
	// MaxSuppressionEntries bounds the memory of the suppression table;
	// beyond it the oldest windows are forgotten (counted in metrics).
	MaxSuppressionEntries int `yaml:"max_suppression_entries"`
	// Placeholders are the values of %name% for the Sigma expand modifier.
	Placeholders map[string][]string `yaml:"placeholders"`
	// ReloadInterval is how often the rule directories are checked for
	// changes; a changed set is loaded and, if every rule is valid,
	// replaces the running one. 0 turns reloading off.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// AllowedLateness is how far behind the processor's watermark (the
	// newest event time of each source) an event may arrive and still count
	// in a correlation window. Later events are still normalized, stored
	// and matched by single-event rules; their correlation matches are
	// dropped and counted. A window is closed, and its state deleted, once
	// the watermark minus the lateness passes its end. `crowsnest detect`
	// replays files on event time and ignores it.
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// MaxCorrelationGroups bounds the open windows of each correlation;
	// beyond it the window with the oldest match is forgotten (counted).
	MaxCorrelationGroups int `yaml:"max_correlation_groups"`
}

// NewDefaultConfig returns the defaults: detection on with the built-in
// pack, a 10-minute suppression window, 100 000 suppression entries, rule
// directories checked for changes every 30 s, one minute of allowed
// lateness, 10 000 open windows per correlation.
func NewDefaultConfig() Config {
	return Config{
		Enabled:               true,
		Builtin:               true,
		SuppressionWindow:     10 * time.Minute,
		MaxSuppressionEntries: 100_000,
		ReloadInterval:        30 * time.Second,
		AllowedLateness:       time.Minute,
		MaxCorrelationGroups:  10_000,
	}
}

// Validate reports every invalid field, each with its key path.
func (c *Config) Validate() error {
	var errs []error
	for i, d := range c.RulesDirs {
		if strings.TrimSpace(d) == "" {
			errs = append(errs, config.FieldError(fmt.Sprintf("rules_dirs[%d]", i), "must not be empty"))
		}
	}
	if c.SuppressionWindow < 0 || c.SuppressionWindow > 7*24*time.Hour {
		errs = append(errs, config.FieldError("suppression_window", "must be between 0 (off) and 168h, got %s", c.SuppressionWindow))
	}
	if c.ReloadInterval < 0 || c.ReloadInterval > 24*time.Hour {
		errs = append(errs, config.FieldError("reload_interval", "must be between 0 (off) and 24h, got %s", c.ReloadInterval))
	}
	if c.AllowedLateness < 0 || c.AllowedLateness > 24*time.Hour {
		errs = append(errs, config.FieldError("allowed_lateness", "must be between 0 and 24h, got %s", c.AllowedLateness))
	}
	if c.MaxCorrelationGroups < 1 || c.MaxCorrelationGroups > 10_000_000 {
		errs = append(errs, config.FieldError("max_correlation_groups", "must be between 1 and 10000000, got %d", c.MaxCorrelationGroups))
	}
	if c.MaxSuppressionEntries < 1 || c.MaxSuppressionEntries > 10_000_000 {
		errs = append(errs, config.FieldError("max_suppression_entries", "must be between 1 and 10000000, got %d", c.MaxSuppressionEntries))
	}
	for name, vals := range c.Placeholders {
		if name == "" || strings.ContainsAny(name, "% ") {
			errs = append(errs, config.FieldError("placeholders", "name %q: must be non-empty, without %% or spaces", name))
		}
		if len(vals) == 0 {
			errs = append(errs, config.FieldError("placeholders."+name, "needs at least one value"))
		}
	}
	if c.Enabled && !c.Builtin && len(c.RulesDirs) == 0 {
		errs = append(errs, config.FieldError("builtin", "detection is enabled with no rules: set builtin or rules_dirs"))
	}
	return errors.Join(errs...)
}
