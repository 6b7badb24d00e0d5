// Command crowsnest-processor is the processor stage alone, for deployment:
// it consumes the raw streams, normalizes and publishes events. It carries
// neither collectors nor sink drivers nor a NATS server.
package main

import (
	"context"
	"errors"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/stage"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
)

// config is the shared file as this stage reads it: its own section typed,
// the other stages' sections accepted as they are.
type config struct {
	stage.Common `yaml:",inline"`
	Processor    pipeline.Config `yaml:"processor"`

	DataDir    yaml.Node `yaml:"data_dir"`
	Embedded   yaml.Node `yaml:"embedded"`
	Collectors yaml.Node `yaml:"collectors"`
	Sinks      yaml.Node `yaml:"sinks"`
}

func (c *config) Shared() *stage.Common { return &c.Common }

func (c *config) Validate() error {
	err := stage.Section("processor", c.Processor.Validate())
	return errors.Join(c.Common.Validate(), err)
}

func main() {
	cfg := &config{Common: stage.NewCommon(), Processor: pipeline.NewDefaultConfig()}
	os.Exit(stage.Main("crowsnest-processor", cfg, os.Args[1:], os.Stderr, func(ctx context.Context, env *stage.Env) error {
		reg, err := sources.NewRegistry(cfg.Processor.Normalize)
		if err != nil {
			return err
		}
		norm, err := normalize.New(cfg.Processor.Normalize, reg)
		if err != nil {
			return err
		}
		p, err := pipeline.New(env.JetStream, norm, deadletter.NewPublisher(env.JetStream), cfg.Processor, pipeline.Settings{
			Logger:     env.Logger,
			Metrics:    env.Metrics.Component(telemetry.KindProcessor, "processor"),
			Consumer:   cfg.Topology.Consumers.Processor,
			Partitions: cfg.Topology.Partitions,
			Registerer: env.Registry,
		})
		if err != nil {
			return err
		}
		return p.Run(ctx)
	}, stage.WithStreams(topology.ProcessorStreams())))
}
