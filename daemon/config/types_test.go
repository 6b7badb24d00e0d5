package config_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// testConfig has the shapes stage configs use: named sub-structs, every
// scalar kind, a Secret, a ByteSize, a TextUnmarshaler, lists, maps of
// sections, an optional (pointer) section and an ",inline" base.
type testConfig struct {
	NATS   natsConfig             `yaml:"nats"`
	Sinks  sinksConfig            `yaml:"sinks"`
	Tags   []string               `yaml:"tags"`
	Labels map[string]string      `yaml:"labels"`
	Routes map[string]routeConfig `yaml:"routes"`
	Limits *limitsConfig          `yaml:"limits"`
	Extra  map[string]any         `yaml:"extra"`
}

type natsConfig struct {
	URL           string        `yaml:"url"`
	Timeout       time.Duration `yaml:"timeout"`
	MaxReconnects int           `yaml:"max_reconnects"`
	Password      config.Secret `yaml:"password"`
	Ratio         float64       `yaml:"ratio"`
	TLS           bool          `yaml:"tls"`
}

type sinksConfig struct {
	File fileSinkConfig `yaml:"file"`
}

type fileSinkConfig struct {
	Dir      string          `yaml:"dir"`
	Replicas int             `yaml:"replicas"`
	MaxBytes config.ByteSize `yaml:"max_bytes"`
	Port     uint16          `yaml:"port"`
	Level    level           `yaml:"level"`
}

type componentBase struct {
	ID string `yaml:"id"`
}

type routeConfig struct {
	componentBase `yaml:",inline"`
	Subject       string `yaml:"subject"`
}

type limitsConfig struct {
	Rate    float32  `yaml:"rate"`
	Retries []uint32 `yaml:"retries"`
	Window  window   `yaml:"window"`
}

// window decodes itself (yaml.Unmarshaler), accepting "5m" or {size, every}.
type window struct {
	Size  int           `yaml:"size"`
	Every time.Duration `yaml:"every"`
}

func (w *window) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return fmt.Errorf("window: %w", err)
		}
		*w = window{Size: 1, Every: d}
		return nil
	}
	type plain window // without the method, to decode the mapping
	return n.Decode((*plain)(w))
}

func newTestConfig() testConfig {
	return testConfig{
		NATS: natsConfig{URL: "nats://127.0.0.1:4222", Timeout: 5 * time.Second, MaxReconnects: 10},
		Sinks: sinksConfig{File: fileSinkConfig{
			Dir: "/var/lib/crowsnest", Replicas: 1, MaxBytes: 512 * config.MiB, Port: 8080, Level: levelInfo,
		}},
	}
}

// level is a TextUnmarshaler, as enum-like config types are.
type level int

const (
	levelInfo level = iota
	levelDebug
)

func (l *level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "info":
		*l = levelInfo
	case "debug":
		*l = levelDebug
	default:
		return fmt.Errorf("unknown level %q (want info or debug)", b)
	}
	return nil
}

func (l level) MarshalText() ([]byte, error) {
	return []byte([...]string{"info", "debug"}[l]), nil
}

// Validate methods for the ValidateAll tests: each checks only its own fields.

func (c testConfig) Validate() error {
	if len(c.Tags) > 3 {
		return config.FieldError("tags", "at most 3, got %d", len(c.Tags))
	}
	return nil
}

func (c *natsConfig) Validate() error { // pointer receiver on purpose
	var errs []error
	if !strings.HasPrefix(c.URL, "nats://") {
		errs = append(errs, config.FieldError("url", "want a nats:// URL, got %q", c.URL))
	}
	if c.Timeout <= 0 {
		errs = append(errs, config.FieldError("timeout", "must be positive"))
	}
	return errors.Join(errs...)
}

var errNoDir = errors.New("no directory")

func (c fileSinkConfig) Validate() error {
	if c.Dir == "" {
		return config.FieldError("dir", "must not be empty: %w", errNoDir)
	}
	return nil
}

func (c *routeConfig) Validate() error {
	if c.Subject == "" {
		return errors.New("a route needs a subject") // not a FieldError: located at the route
	}
	return nil
}

func (c limitsConfig) Validate() error {
	if c.Rate < 0 {
		return config.FieldError("rate", "must not be negative")
	}
	return nil
}
