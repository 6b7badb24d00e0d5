package sources

import (
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/auditd"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/collector"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/docker"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/falco"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/jsonmap"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/procwatch"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/tetragon"
)

// Factories returns the factory of every source, one line each.
func Factories() []normalize.Factory {
	return []normalize.Factory{
		k8saudit.NewFactory(),
		falco.NewFactory(),
		tetragon.NewFactory(),
		docker.NewFactory(),
		auditd.NewFactory(),
		procwatch.NewFactory(),
		jsonmap.NewFactory(),
		collector.NewFactory(),
	}
}

// NewRegistry builds every source's mapper with cfg.
func NewRegistry(cfg normalize.Config) (*normalize.Registry, error) {
	return normalize.NewRegistry(cfg, Factories()...)
}
