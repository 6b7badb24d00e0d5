// Command crowsnest-collector runs the configured collectors alone, for
// deployment as a sidecar, a DaemonSet or a plain process. It carries no
// processor, no sink driver and no NATS server.
package main

import (
	"context"
	"errors"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/collectors/agent"
	"github.com/crowsnest-siem/crowsnest/daemon/stage"
)

type config struct {
	stage.Common `yaml:",inline"`
	// DataDir is where collectors keep checkpoints.
	DataDir    string       `yaml:"data_dir"`
	Collectors agent.Config `yaml:"collectors"`

	Embedded  yaml.Node `yaml:"embedded"`
	Processor yaml.Node `yaml:"processor"`
	Sinks     yaml.Node `yaml:"sinks"`
}

func (c *config) Shared() *stage.Common { return &c.Common }

func (c *config) Validate() error {
	err := stage.Section("collectors", c.Collectors.Validate())
	return errors.Join(c.Common.Validate(), err)
}

func main() {
	cfg := &config{Common: stage.NewCommon(), DataDir: ".data", Collectors: agent.NewDefaultConfig()}
	os.Exit(stage.Main("crowsnest-collector", cfg, os.Args[1:], os.Stderr, func(ctx context.Context, env *stage.Env) error {
		a, err := agent.New(env.Conn, cfg.Collectors, agent.Settings{
			Logger: env.Logger, Metrics: env.Metrics, Registry: env.Registry, DataDir: cfg.DataDir, Stdin: os.Stdin,
		})
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}))
}
