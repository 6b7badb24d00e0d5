package webhook

import (
	"context"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Type is the webhook sink's name in config files.
const Type = "webhook"

// NewFactory returns the webhook sink's factory for the registry.
func NewFactory() sink.Factory {
	return sink.NewFactory(Type, NewDefaultConfig, func(_ context.Context, cfg Config, set sink.Settings) (sink.Sink, error) {
		return New(cfg, set)
	})
}
