// Command crowsnest-sink runs the configured sinks alone, for deployment: each
// is its own durable consumer on the events and alerts streams. It carries
// neither collectors nor the processor nor a NATS server.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/stage"
	"github.com/crowsnest-siem/crowsnest/sinks/registry"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

type config struct {
	stage.Common `yaml:",inline"`
	// DataDir is where sinks that keep local state (the file sink) keep it.
	DataDir string          `yaml:"data_dir"`
	Sinks   registry.Config `yaml:"sinks"`

	Embedded   yaml.Node `yaml:"embedded"`
	Collectors yaml.Node `yaml:"collectors"`
	Processor  yaml.Node `yaml:"processor"`
}

func (c *config) Shared() *stage.Common { return &c.Common }

func (c *config) Validate() error {
	err := stage.Section("sinks", c.Sinks.Validate())
	if len(c.Sinks.Configured()) == 0 {
		err = errors.Join(err, errors.New("sinks: none enabled; enable at least one (sinks.<type>.enabled: true)"))
	}
	return errors.Join(c.Common.Validate(), err)
}

func main() {
	cfg := &config{Common: stage.NewCommon(), DataDir: ".data", Sinks: registry.NewDefaultConfig()}
	cfg.Sinks.Terminal.Enabled = false // a deployed sink has no terminal to show
	os.Exit(stage.Main("crowsnest-sink", cfg, os.Args[1:], os.Stderr, func(ctx context.Context, env *stage.Env) error {
		var runners []*sink.Runner
		for _, c := range cfg.Sinks.Configured() {
			set := sink.Settings{Logger: env.Logger.With("sink", c.Name), Metrics: env.Registry, DataDir: cfg.DataDir, Consumer: cfg.Topology.Consumers.Sink}
			s, err := c.Factory.Create(ctx, c.Config, set)
			if err != nil {
				return err
			}
			r, err := sink.New(env.JetStream, c.Name, s, c.Runner, set)
			if err != nil {
				return fmt.Errorf("sink %s: %w", c.Name, err)
			}
			runners = append(runners, r)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(runners))
		for i, r := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = r.Run(ctx)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}, stage.WithStreams(topology.SinkStreams())))
}
