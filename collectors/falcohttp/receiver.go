package falcohttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/entitykey"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/ingress"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Publisher is what the receiver needs of the publisher.
type Publisher interface {
	NewBatch() *publish.Batch
}

var _ Publisher = (*publish.Publisher)(nil)

// Settings is what the code gives a Receiver.
type Settings struct {
	// Publisher takes the alerts. Required.
	Publisher Publisher
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer takes the HTTP metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Ready, when set, says whether records can be taken now; when it
	// errs, requests are answered 503 at once (collectors/internal/ingress).
	Ready func() error
}

// Receiver is the Falco HTTP receiver.
type Receiver struct {
	cfg Config
	pub Publisher
	log *slog.Logger
	srv *ingress.Server
}

// New validates cfg, loads certificates and token, and binds the address.
func New(cfg Config, s Settings) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("falco http config: %w", err)
	}
	if s.Publisher == nil {
		return nil, errors.New("falco http: Settings.Publisher is nil")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, pub: s.Publisher, log: log.With("component", ConfigKey, "source", topology.SourceFalco)}
	mux := http.NewServeMux()
	mux.Handle("POST "+cfg.Path, http.HandlerFunc(r.serve))
	srv, err := ingress.New(cfg.Server, ingress.Settings{Source: ConfigKey, Logger: log, Registerer: s.Registerer, Ready: s.Ready}, mux)
	if err != nil {
		return nil, fmt.Errorf("falco http: %w", err)
	}
	r.srv = srv
	return r, nil
}

// Addr is the bound address.
func (r *Receiver) Addr() net.Addr { return r.srv.Addr() }

// URL is the endpoint alerts are posted to.
func (r *Receiver) URL() string { return r.srv.URL() + r.cfg.Path }

// Run serves until ctx ends.
func (r *Receiver) Run(ctx context.Context) error { return r.srv.Run(ctx) }

// Close releases the listener of a Receiver that was never Run.
func (r *Receiver) Close() error { return r.srv.Close() }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, ok := ingress.ReadBody(w, req)
	if !ok {
		return
	}
	ctx := req.Context()
	now := time.Now()
	b := r.pub.NewBatch()
	var addErr error
	n, rejected := 0, 0
	split(body, func(p part) bool {
		n++
		rec := publish.Record{Source: topology.SourceFalco, Data: p.data, ID: p.id, Observed: now, Key: entitykey.Falco(p.data)}
		if p.reject != "" {
			rejected++
			r.log.Warn("falco alert rejected", "event_id", p.id, "part", n, "reason", p.reject)
			addErr = b.AddDeadLetter(ctx, rec, fmt.Sprintf("falco http: part %d: %s", n, p.reject))
		} else {
			addErr = b.Add(ctx, rec)
		}
		return addErr == nil
	})
	if addErr != nil {
		b.Seal()
		r.srv.Fail(w, fmt.Errorf("publish alert %d of the request: %w", n, addErr))
		return
	}
	if err := b.Wait(ctx); err != nil {
		r.srv.Fail(w, fmt.Errorf("wait for %d alerts: %w", n, err))
		return
	}
	if n > 0 && rejected == n {
		ingress.Reply(w, http.StatusBadRequest, "no Falco alert in the body (kept in the dead-letter stream)")
		return
	}
	ingress.Reply(w, http.StatusOK, fmt.Sprintf("%d alerts stored, %d rejected", n-rejected, rejected))
}
