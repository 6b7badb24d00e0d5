//go:build !linux

package procwatch

import (
	"context"
	"errors"
)

type procConnector struct{}

func openProcConnector() (*procConnector, error) {
	return nil, errors.New("the process events connector is Linux-only")
}

func (p *procConnector) close() {}

func (p *procConnector) run(context.Context, chan<- execEvent, func()) error { return nil }
