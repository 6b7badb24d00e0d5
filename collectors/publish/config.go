package publish

import (
	"errors"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the publisher's section sits under in a collector's
// configuration ("collector.publish" in crowsnest.yaml, for instance). It is
// informative: config.ValidateAll prefixes the paths.
const ConfigKey = "publish"

// maxNodeLen caps the node name: a Kubernetes node or pod name is at most
// 253 bytes.
const maxNodeLen = 253

// Config is what a user writes about the publisher.
type Config struct {
	// CollectorID is this collector's identity, one NATS subject token
	// (crowsnest.raw.<source>.<collector_id>.<key>): no '.', '*', '>', whitespace,
	// at most 128 bytes. NATS permissions can bind a collector to it.
	// Default: the host name, sanitized (topology.SanitizeToken).
	CollectorID string `yaml:"collector_id"`
	// CollectorIDFromNode replaces collector_id with node, sanitized: for a
	// DaemonSet, whose node comes from the downward API (spec.nodeName), so
	// the identity is the node's and survives pod restarts and rollouts
	// (the default, the host name, is the pod's name there). Node names are
	// DNS subdomains, which never contain '_', so mapping '.' to '_' keeps
	// distinct nodes distinct.
	CollectorIDFromNode bool `yaml:"collector_id_from_node"`
	// Node is the node or pod the collector runs on (Crowsnest-Node header).
	// Default: the host name.
	Node string `yaml:"node"`
	// MaxInFlight is how many records may be published and not yet
	// acknowledged. When it is reached, sources block (backpressure).
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxEventBytes is the largest record published raw; a larger one goes
	// to the dead-letter stream with a truncated sample. The server's
	// max_payload (1 MiB by default) caps it further.
	MaxEventBytes config.ByteSize `yaml:"max_event_bytes"`
	// DeadLetterSampleBytes is how much of an oversized record the
	// dead-letter record keeps.
	DeadLetterSampleBytes config.ByteSize `yaml:"dead_letter_sample_bytes"`
	// AckTimeout is how long to wait for JetStream to acknowledge a publish
	// before publishing it again (the message id makes the retry safe).
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// Retry is the backoff between attempts to publish one record.
	Retry RetryConfig `yaml:"retry"`
}

// RetryConfig is an exponential backoff with jitter. Records are retried
// until acknowledged or the publisher closes: dropping them would lose
// events, so a long outage turns into backpressure instead.
type RetryConfig struct {
	// InitialBackoff is the wait before the first retry.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	// MaxBackoff caps the wait between retries.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// NewDefaultConfig returns the defaults: identity from the host name, 1024
// records in flight, 1 MiB records, 5 s ack timeout, 100 ms to 5 s backoff.
func NewDefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return Config{
		CollectorID:           topology.SanitizeToken(host),
		Node:                  host,
		MaxInFlight:           1024,
		MaxEventBytes:         1 * config.MiB,
		DeadLetterSampleBytes: 16 * config.KiB,
		AckTimeout:            5 * time.Second,
		Retry: RetryConfig{
			InitialBackoff: 100 * time.Millisecond,
			MaxBackoff:     5 * time.Second,
		},
	}
}

// Resolved returns c with collector_id derived from node when
// collector_id_from_node is set; the publisher runs with the result.
func (c Config) Resolved() Config {
	if c.CollectorIDFromNode && c.Node != "" {
		c.CollectorID = topology.SanitizeToken(c.Node)
	}
	return c
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	c = c.Resolved()
	var errs []error
	if err := topology.ValidateToken(c.CollectorID); err != nil {
		errs = append(errs, config.FieldError("collector_id", "%w (try %q)", err, topology.SanitizeToken(c.CollectorID)))
	}
	switch {
	case c.Node == "":
		errs = append(errs, config.FieldError("node", "must be set (the node or pod this collector runs on)"))
	case len(c.Node) > maxNodeLen:
		errs = append(errs, config.FieldError("node", "must be at most %d bytes, got %d", maxNodeLen, len(c.Node)))
	case strings.ContainsFunc(c.Node, unicode.IsControl):
		errs = append(errs, config.FieldError("node", "must not contain control characters (it is a header value): %q", c.Node))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 1<<20 {
		errs = append(errs, config.FieldError("max_in_flight", "must be between 1 and 1048576, got %d", c.MaxInFlight))
	}
	if c.MaxEventBytes < 1*config.KiB || c.MaxEventBytes > 64*config.MiB {
		errs = append(errs, config.FieldError("max_event_bytes", "must be between 1KiB and 64MiB, got %s", c.MaxEventBytes))
	}
	if c.DeadLetterSampleBytes < 1 || c.DeadLetterSampleBytes > c.MaxEventBytes {
		errs = append(errs, config.FieldError("dead_letter_sample_bytes", "must be between 1 and max_event_bytes (%s), got %s", c.MaxEventBytes, c.DeadLetterSampleBytes))
	}
	if c.AckTimeout < 100*time.Millisecond {
		errs = append(errs, config.FieldError("ack_timeout", "must be at least 100ms, got %s", c.AckTimeout))
	}
	if c.Retry.InitialBackoff <= 0 {
		errs = append(errs, config.FieldError("retry.initial_backoff", "must be > 0, got %s", c.Retry.InitialBackoff))
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		errs = append(errs, config.FieldError("retry.max_backoff", "must be >= retry.initial_backoff (%s), got %s", c.Retry.InitialBackoff, c.Retry.MaxBackoff))
	}
	return errors.Join(errs...)
}
