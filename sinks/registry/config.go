package registry

import (
	"errors"

	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/elasticsearch"
	"github.com/crowsnest-siem/crowsnest/sinks/file"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/terminal"
	"github.com/crowsnest-siem/crowsnest/sinks/webhook"
)

// Block is one sink's section of the config file: whether it runs, how the
// runner feeds it (streams, batching, retries), and the sink's own settings,
// written inline beside them.
type Block[C sink.Config] struct {
	Enabled bool              `yaml:"enabled"`
	Runner  sink.RunnerConfig `yaml:"runner"`
	Sink    C                 `yaml:",inline"`
}

// Config is the `sinks:` section: one typed block per sink type, so that a
// misspelt key in any sink's settings is an error with its line number.
// Adding a sink is one field here, one line in Configured and one in Factories.
type Config struct {
	File     Block[file.Config]     `yaml:"file"`
	Terminal Block[terminal.Config] `yaml:"terminal"`

	// ClickHouse is off until given a server (--clickhouse URL, or url here).
	ClickHouse Block[clickhouse.Config] `yaml:"clickhouse"`

	// Elasticsearch is off until given a server (--elasticsearch URL, or
	// addresses here).
	Elasticsearch Block[elasticsearch.Config] `yaml:"elasticsearch"`

	// Webhook is off until given a URL; it forwards the alerts stream only
	// unless its runner lists events too.
	Webhook Block[webhook.Config] `yaml:"webhook"`
}

// NewDefaultConfig enables the file and terminal sinks with their defaults.
func NewDefaultConfig() Config {
	return Config{
		File:     Block[file.Config]{Enabled: true, Runner: sink.NewDefaultRunnerConfig(), Sink: file.NewDefaultConfig()},
		Terminal: Block[terminal.Config]{Enabled: true, Runner: sink.NewDefaultRunnerConfig(), Sink: terminal.NewDefaultConfig()},

		ClickHouse: Block[clickhouse.Config]{Runner: sink.NewDefaultRunnerConfig(), Sink: clickhouse.NewDefaultConfig()},

		Elasticsearch: Block[elasticsearch.Config]{Runner: sink.NewDefaultRunnerConfig(), Sink: elasticsearch.NewDefaultConfig()},

		Webhook: Block[webhook.Config]{Runner: webhookRunnerConfig(), Sink: webhook.NewDefaultConfig()},
	}
}

// webhookRunnerConfig feeds the webhook alerts only (chat and ticketing want
// alerts, not every event), in small batches sent soon.
func webhookRunnerConfig() sink.RunnerConfig {
	c := sink.NewDefaultRunnerConfig()
	c.Streams = []sink.Kind{sink.KindAlerts}
	c.MaxBatchEvents = 100
	return c
}

// Configured is one enabled sink, ready for its factory.
type Configured struct {
	Name    string
	Factory sink.Factory
	Config  sink.Config
	Runner  sink.RunnerConfig
}

// Configured lists the enabled sinks in a stable order.
func (c Config) Configured() []Configured {
	var out []Configured
	add := func(enabled bool, typ string, cfg sink.Config, runner sink.RunnerConfig) {
		if !enabled {
			return
		}
		f, _ := Lookup(typ) // every type listed here is in Factories (tested)
		out = append(out, Configured{Name: typ, Factory: f, Config: cfg, Runner: runner})
	}
	add(c.File.Enabled, file.Type, c.File.Sink, c.File.Runner)
	add(c.Terminal.Enabled, terminal.Type, c.Terminal.Sink, c.Terminal.Runner)
	add(c.ClickHouse.Enabled, clickhouse.Type, c.ClickHouse.Sink, c.ClickHouse.Runner)
	add(c.Elasticsearch.Enabled, elasticsearch.Type, c.Elasticsearch.Sink, c.Elasticsearch.Runner)
	add(c.Webhook.Enabled, webhook.Type, c.Webhook.Sink, c.Webhook.Runner)
	return out
}

// Validate checks every enabled sink's block, paths relative to `sinks`.
func (c Config) Validate() error {
	var errs []error
	for _, s := range c.Configured() {
		if err := s.Config.Validate(); err != nil {
			errs = append(errs, prefix(s.Name, err))
		}
		if err := s.Runner.Validate(); err != nil {
			errs = append(errs, prefix(s.Name+".runner", err))
		}
	}
	return errors.Join(errs...)
}

// prefix puts path before a block's field paths.
func prefix(path string, err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, prefix(path, e))
		}
		return errors.Join(out...)
	}
	var fe *sink.FieldError
	if errors.As(err, &fe) {
		return &sink.FieldError{Path: path + "." + fe.Path, Err: fe.Err}
	}
	return &sink.FieldError{Path: path, Err: err}
}
