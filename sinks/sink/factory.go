package sink

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/crowsnest-siem/crowsnest/bus/topology"

	"github.com/prometheus/client_golang/prometheus"
)

// Settings is what the program injects into a sink and its Runner; Config is
// what the user writes.
type Settings struct {
	// Logger receives the sink's and the Runner's logs. Nil discards them.
	Logger *slog.Logger
	// Metrics is where the Runner registers its metrics. Nil registers
	// nowhere (the metrics still count, nobody scrapes them).
	Metrics prometheus.Registerer
	// DataDir is the directory a sink keeps local state in, when its own
	// config does not name one.
	DataDir string
	// Consumer is how the sink's durable consumers redeliver: the topology
	// config's consumers.sink. The zero value means the topology default.
	Consumer topology.ConsumerSettings
}

// consumerSettings returns s.Consumer, or the topology default when unset.
func (s Settings) consumerSettings() topology.ConsumerSettings {
	if s.Consumer.AckWait == 0 && s.Consumer.MaxAckPending == 0 && s.Consumer.MaxDeliver == 0 {
		return topology.NewDefaultConfig().Consumers.Sink
	}
	return s.Consumer
}

// LoggerOrDiscard returns s.Logger, or a logger that discards everything.
func (s Settings) LoggerOrDiscard() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Config is a sink's config block. Validate reports every problem, joined,
// each naming its key path relative to the block.
type Config interface {
	Validate() error
}

// Factory makes sinks of one type. Each sink package exports NewFactory; the
// registry lists them all.
type Factory struct {
	// Type is the sink's name in config files ("file", "terminal").
	Type string
	// NewDefaultConfig returns the sink's config with every default set.
	NewDefaultConfig func() Config
	// Create builds a sink from a validated config of the type
	// NewDefaultConfig returns.
	Create func(ctx context.Context, cfg Config, set Settings) (Sink, error)
}

// NewFactory builds a Factory from typed functions, so that a sink package
// never type-asserts its own config.
func NewFactory[C Config](typ string, newDefault func() C, create func(context.Context, C, Settings) (Sink, error)) Factory {
	return Factory{
		Type:             typ,
		NewDefaultConfig: func() Config { return newDefault() },
		Create: func(ctx context.Context, cfg Config, set Settings) (Sink, error) {
			c, ok := cfg.(C)
			if !ok {
				var want C
				return nil, fmt.Errorf("create %s sink: config is %T, want %T", typ, cfg, want)
			}
			if err := c.Validate(); err != nil {
				return nil, fmt.Errorf("create %s sink: %w", typ, err)
			}
			return create(ctx, c, set)
		},
	}
}
