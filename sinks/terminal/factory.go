package terminal

import (
	"context"
	"os"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Type is the terminal sink's name in config files.
const Type = "terminal"

// NewFactory returns the terminal sink's factory for the registry; its sinks
// write to standard output.
func NewFactory() sink.Factory {
	return sink.NewFactory(Type, NewDefaultConfig, func(_ context.Context, cfg Config, set sink.Settings) (sink.Sink, error) {
		return New(cfg, os.Stdout, set)
	})
}
