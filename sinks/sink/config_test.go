package sink

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

func TestRunnerConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*RunnerConfig)
		paths  []string // key paths the error must name; none: valid
	}{
		{"defaults", func(*RunnerConfig) {}, nil},
		{"alerts only", func(c *RunnerConfig) { c.Streams = []Kind{KindAlerts} }, nil},
		{"no streams", func(c *RunnerConfig) { c.Streams = nil }, []string{"streams"}},
		{"stream twice", func(c *RunnerConfig) { c.Streams = []Kind{KindEvents, KindEvents} }, []string{"streams[1]"}},
		{"zero batch", func(c *RunnerConfig) { c.MaxBatchEvents = 0; c.MaxBatchBytes = 0 }, []string{"max_batch_events", "max_batch_bytes"}},
		{"timers", func(c *RunnerConfig) {
			c.FlushInterval = 0
			c.WriteTimeout = -1
			c.DrainTimeout = 0
			c.StatusInterval = 0
		},
			[]string{"flush_interval", "write_timeout", "drain_timeout", "status_interval"}},
		{"retry", func(c *RunnerConfig) {
			c.Retry = RetryConfig{MaxAttempts: 0, InitialBackoff: time.Second, MaxBackoff: time.Millisecond, RedeliveryDelay: 0}
		}, []string{"retry.max_attempts", "retry.max_backoff", "retry.redelivery_delay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewDefaultRunnerConfig()
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.paths) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want errors at %v", tt.paths)
			}
			for _, p := range tt.paths {
				if !strings.Contains(err.Error(), p+":") {
					t.Errorf("error %q does not name %s", err, p)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.FieldPath() == "" {
				t.Errorf("error carries no FieldError")
			}
		})
	}
}

func TestRunnerConfigDecode(t *testing.T) {
	c := NewDefaultRunnerConfig()
	yaml := "streams: [alerts]\nmax_batch_bytes: 1MiB\nflush_interval: 250ms\nretry:\n  max_attempts: 5\n"
	if err := config.Decode([]byte(yaml), "sink.yaml", &c, config.WithEnviron(nil)); err != nil {
		t.Fatal(err)
	}
	if len(c.Streams) != 1 || c.Streams[0] != KindAlerts || c.MaxBatchBytes != topology.MiB ||
		c.FlushInterval != 250*time.Millisecond || c.Retry.MaxAttempts != 5 || c.MaxBatchEvents != 500 {
		t.Fatalf("decoded %+v", c)
	}
	// A typo is an error, never a silently ignored key.
	err := config.Decode([]byte("max_batch_event: 10\n"), "sink.yaml", &c, config.WithEnviron(nil))
	if err == nil || !strings.Contains(err.Error(), "max_batch_events") {
		t.Fatalf("typo: %v, want an error suggesting max_batch_events", err)
	}
	if err := config.Decode([]byte("streams: [logs]\n"), "sink.yaml", &c, config.WithEnviron(nil)); err == nil {
		t.Fatal("unknown stream accepted")
	}
}

func TestConsumerFit(t *testing.T) {
	c := NewDefaultRunnerConfig()
	cs := topology.NewDefaultConfig().Consumers.Sink
	if err := checkConsumerFit(c, cs); err != nil {
		t.Fatalf("defaults do not fit: %v", err)
	}
	cs.MaxAckPending = 600 // < 2 × 500
	cs.AckWait = time.Second
	err := checkConsumerFit(c, cs)
	if err == nil || !strings.Contains(err.Error(), "max_ack_pending") || !strings.Contains(err.Error(), "ack_wait") {
		t.Fatalf("checkConsumerFit = %v, want both limits named", err)
	}
}
