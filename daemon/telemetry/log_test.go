package telemetry_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
)

func TestLogConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  telemetry.LogConfig
		want string // "" for valid
	}{
		{cfg: telemetry.NewDefaultLogConfig()},
		{cfg: telemetry.LogConfig{}},
		{cfg: telemetry.LogConfig{Level: "DEBUG", Format: "JSON"}},
		{cfg: telemetry.LogConfig{Level: "error", Format: "text"}},
		{cfg: telemetry.LogConfig{Level: "verbose"}, want: `log.level: must be one of debug, info, warn, error; got "verbose"`},
		{cfg: telemetry.LogConfig{Level: "warning"}, want: `log.level: must be one of debug, info, warn, error; got "warning"`},
		{cfg: telemetry.LogConfig{Format: "logfmt"}, want: `log.format: must be text or json; got "logfmt"`},
	}
	for _, tt := range tests {
		err := config.ValidateAll("log", tt.cfg)
		if got := errString(err); got != tt.want {
			t.Errorf("%+v: Validate = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestNewLogger(t *testing.T) {
	t.Run("text at info drops debug", func(t *testing.T) {
		var buf bytes.Buffer
		log := telemetry.NewLogger(telemetry.NewDefaultLogConfig(), &buf)
		log.Debug("hidden")
		log.Info("shown", "stream", "CROWSNEST_EVENTS")
		out := buf.String()
		if strings.Contains(out, "hidden") || !strings.Contains(out, "level=INFO msg=shown stream=CROWSNEST_EVENTS") {
			t.Errorf("output %q", out)
		}
	})
	t.Run("json at debug", func(t *testing.T) {
		var buf bytes.Buffer
		log := telemetry.NewLogger(telemetry.LogConfig{Level: "debug", Format: "json"}, &buf)
		log.Debug("shown", "event_id", "e1")
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatalf("not JSON: %q: %v", buf.String(), err)
		}
		if rec["level"] != "DEBUG" || rec["msg"] != "shown" || rec["event_id"] != "e1" {
			t.Errorf("record %v", rec)
		}
	})
	t.Run("warn drops info", func(t *testing.T) {
		var buf bytes.Buffer
		log := telemetry.NewLogger(telemetry.LogConfig{Level: "warn"}, &buf)
		log.Info("hidden")
		log.Warn("shown")
		if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
			t.Errorf("output %q", out)
		}
	})
	t.Run("invalid falls back to info text", func(t *testing.T) {
		var buf bytes.Buffer
		log := telemetry.NewLogger(telemetry.LogConfig{Level: "loud", Format: "xml"}, &buf)
		log.Debug("hidden")
		log.Info("shown")
		if out := buf.String(); strings.Contains(out, "hidden") || !strings.HasPrefix(out, "time=") {
			t.Errorf("output %q", out)
		}
	})
}
