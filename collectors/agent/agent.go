// Package agent is a collector process: it runs the configured sources over
// one shared publisher, so every source gets the same delivery guarantees
// (msg ids, bounded in-flight, dead-letter for oversized records, the disk
// spool while NATS is away, redaction before publish). Both `crowsnest run`
// and the crowsnest-collector binary use it. sources.go is the one place
// that lists every source.
//
// It must not know what happens after JetStream: no processor, no sinks.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/collectors/publish"
	"github.com/crowsnest-siem/crowsnest/collectors/redact"
	"github.com/crowsnest-siem/crowsnest/collectors/spool"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
)

// Settings is what the code gives the agent.
type Settings struct {
	Logger   *slog.Logger
	Metrics  *telemetry.ComponentMetrics
	Registry prometheus.Registerer
	// DataDir holds checkpoints and the spool (under DataDir/collectors).
	DataDir string
	// CloseTimeout bounds the wait for in-flight acknowledgements at shutdown.
	CloseTimeout time.Duration
	// Stdin feeds json_lines' stdin input; nil: none.
	Stdin io.Reader
}

// Agent runs the sources.
type Agent struct {
	nc      *nats.Conn
	pub     *publish.Publisher
	spool   *spool.Spool
	sources []namedSource
	log     *slog.Logger
	closeTO time.Duration
	// gapEvery is how often the spool's gap records are published.
	gapEvery time.Duration
}

type namedSource struct {
	name  string
	run   func(context.Context) error
	close func() error // releases what New took (a bound port) when Run never runs
}

// New builds the spool, the publisher and every enabled source. On error
// nothing is left open.
func New(nc *nats.Conn, cfg Config, s Settings) (a *Agent, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("collectors config: %w", err)
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.CloseTimeout <= 0 {
		s.CloseTimeout = 10 * time.Second
	}
	a = &Agent{nc: nc, log: s.Logger.With("component", "collectors"), closeTO: s.CloseTimeout}
	defer func() {
		if err != nil {
			a.release()
		}
	}()
	ps := publish.Settings{Conn: nc, Logger: s.Logger, Metrics: s.Metrics, Registerer: s.Registry}
	if cfg.Spool.Enabled {
		sc := cfg.Spool.Config
		if sc.Dir == "" {
			sc.Dir = filepath.Join(s.DataDir, "collectors", "spool")
		}
		if a.spool, err = spool.Open(sc, spool.Settings{Logger: s.Logger, Registerer: s.Registry}); err != nil {
			return nil, err
		}
		ps.Spool = a.spool
		a.gapEvery = sc.GapInterval
	}
	if cfg.Redact.Enabled {
		r, err := redact.New(cfg.Redact.Config)
		if err != nil {
			return nil, err
		}
		ps.Transform = r
	}
	if a.pub, err = publish.New(cfg.Publish, ps); err != nil {
		return nil, err
	}
	if a.sources, err = buildSources(cfg, a.pub, a.ready, s); err != nil {
		return nil, err
	}
	return a, nil
}

// errNoRoom is what the push sources answer (503) while nothing can take
// records.
var errNoRoom = errors.New("NATS is unreachable and the spool has no room (or is off); retry later")

// ready says whether records can be taken now: NATS is connected, or the
// spool has room (1 MiB, a large batch's worth). The push sources answer 503
// at once otherwise, rather than holding the request until it times out.
func (a *Agent) ready() error {
	if a.nc.Status() == nats.CONNECTED {
		return nil
	}
	if a.spool != nil && !a.spool.Full(1<<20) {
		return nil
	}
	return errNoRoom
}

// release closes what New opened, for an Agent that will not Run.
func (a *Agent) release() {
	for _, src := range a.sources {
		if src.close != nil {
			_ = src.close() // nothing was served: the listener just goes
		}
	}
	if a.pub != nil {
		_ = a.pub.Close(context.Background()) // nothing in flight yet
	}
	if a.spool != nil {
		_ = a.spool.Close() // nothing spooled by this agent yet
	}
}

// Run runs every source until ctx ends (or each finishes), then waits for
// the publisher's in-flight records to be acknowledged and closes the spool
// (what it still holds is replayed by the next run). A source finishing on
// its own (a bounded replay, stdin) is not an error.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(a.sources))
	for i, src := range a.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := src.run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				a.log.Error("source stopped", "source", src.name, "error", err)
				errs[i] = fmt.Errorf("%s: %w", src.name, err)
			}
		}()
	}
	var replayDone, gapsDone chan error
	rctx, stopReplay := context.WithCancel(context.Background())
	defer stopReplay()
	gctx, stopGaps := context.WithCancel(context.Background())
	defer stopGaps()
	if a.spool != nil {
		replayDone = make(chan error, 1)
		go func() { replayDone <- a.spool.Run(rctx, a.pub, a.nc) }()
		gapsDone = make(chan error, 1)
		go func() { gapsDone <- a.spool.ReportGaps(gctx, a.pub, a.gapEvery) }()
	}
	wg.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), a.closeTO)
	defer cancel()
	if a.spool != nil {
		// Give a spool that is being replayed the close timeout to finish.
		for a.spool.Bytes() > 0 && a.nc.Status() == nats.CONNECTED && cctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		// The last gap records, before the publisher closes; what is not
		// acknowledged stays on disk for the next run.
		stopGaps()
		<-gapsDone
		if err := a.spool.FlushGaps(cctx, a.pub); err != nil {
			a.log.Warn("gap records kept for the next run", "error", err)
		}
	}
	if err := a.pub.Close(cctx); err != nil {
		errs = append(errs, fmt.Errorf("close publisher: %w", err))
	}
	if a.spool != nil {
		stopReplay()
		<-replayDone
		if err := a.spool.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close spool: %w", err))
		}
		if n := a.spool.Bytes(); n > 0 {
			a.log.Warn("spool keeps records for the next run", "bytes", n)
		}
	}
	return errors.Join(errs...)
}
