package telemetry

import (
	"errors"
	"io"
	"log/slog"
	"strings"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// LogConfig is the "log" section of every stage's configuration.
type LogConfig struct {
	// Level is the lowest level written: debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text (logfmt-like key=value, for people) or json (one object
	// per line, for collectors of logs).
	Format string `yaml:"format"`
}

// NewDefaultLogConfig returns info-level text logs.
func NewDefaultLogConfig() LogConfig {
	return LogConfig{Level: "info", Format: "text"}
}

func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return slog.LevelInfo, false
}

// Validate accepts the levels and formats above in any case; empty means the
// default.
func (c LogConfig) Validate() error {
	var errs []error
	if _, ok := parseLevel(c.Level); !ok && c.Level != "" {
		errs = append(errs, config.FieldError("level", "must be one of debug, info, warn, error; got %q", c.Level))
	}
	if f := strings.ToLower(c.Format); f != "" && f != "text" && f != "json" {
		errs = append(errs, config.FieldError("format", "must be text or json; got %q", c.Format))
	}
	return errors.Join(errs...)
}

// NewLogger returns a logger writing to w as cfg says. Values Validate would
// reject fall back to the defaults; validate the config first.
func NewLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	level, _ := parseLevel(cfg.Level) // info when invalid, as documented
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
