package terminal

import (
	"errors"
	"time"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Color modes.
const (
	ColorAuto   = "auto"   // colour when the output is a terminal
	ColorAlways = "always" // colour even into a pipe
	ColorNever  = "never"
)

// Config is the terminal sink's config block.
type Config struct {
	// StatusInterval is how often the status line is printed.
	StatusInterval time.Duration `yaml:"status_interval"`
	// Color is auto, always or never.
	Color string `yaml:"color"`
	// ShowEvents prints every event too, not only alerts.
	ShowEvents bool `yaml:"show_events"`
}

// NewDefaultConfig returns the defaults: a status line every 5 s, colour on
// terminals, alerts only.
func NewDefaultConfig() Config {
	return Config{StatusInterval: 5 * time.Second, Color: ColorAuto}
}

// Validate reports every invalid field, joined.
func (c Config) Validate() error {
	var errs []error
	if c.StatusInterval < 100*time.Millisecond {
		errs = append(errs, sink.NewFieldError("status_interval", "must be at least 100ms, got %s", c.StatusInterval))
	}
	switch c.Color {
	case ColorAuto, ColorAlways, ColorNever:
	default:
		errs = append(errs, sink.NewFieldError("color", "must be auto, always or never, got %q", c.Color))
	}
	return errors.Join(errs...)
}
