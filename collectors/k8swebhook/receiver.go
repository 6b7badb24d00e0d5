package k8swebhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/entitykey"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/ingress"
	"github.com/crowsnest-siem/crowsnest/collectors/k8saudit"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Publisher is what the receiver needs of the publisher.
type Publisher interface {
	NewBatch() *publish.Batch
}

var _ Publisher = (*publish.Publisher)(nil)

// Settings is what the code gives a Receiver.
type Settings struct {
	// Publisher takes the events. Required.
	Publisher Publisher
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer takes the HTTP metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Ready, when set, says whether records can be taken now; when it
	// errs, requests are answered 503 at once (collectors/internal/ingress).
	Ready func() error
}

// Receiver is the webhook backend.
type Receiver struct {
	cfg Config
	pub Publisher
	log *slog.Logger
	srv *ingress.Server
}

// New validates cfg, loads certificates and token, and binds the address.
func New(cfg Config, s Settings) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("k8s audit webhook config: %w", err)
	}
	if s.Publisher == nil {
		return nil, errors.New("k8s audit webhook: Settings.Publisher is nil")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, pub: s.Publisher, log: log.With("component", ConfigKey, "source", topology.SourceK8sAudit)}
	mux := http.NewServeMux()
	mux.Handle("POST "+cfg.Path, http.HandlerFunc(r.serve))
	srv, err := ingress.New(cfg.Server, ingress.Settings{Source: ConfigKey, Logger: log, Registerer: s.Registerer, Ready: s.Ready}, mux)
	if err != nil {
		return nil, fmt.Errorf("k8s audit webhook: %w", err)
	}
	r.srv = srv
	return r, nil
}

// Addr is the bound address.
func (r *Receiver) Addr() net.Addr { return r.srv.Addr() }

// URL is the endpoint the API server posts to.
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
	items, reject := parseList(body)
	if reject != "" {
		// Kept for forensics: an authenticated client sent it.
		b := r.pub.NewBatch()
		rec := publish.Record{Source: topology.SourceK8sAudit, Data: body, ID: msgid.FromContent(topology.SourceK8sAudit, body), Observed: now}
		if err := b.AddDeadLetter(ctx, rec, "audit webhook: "+reject); err != nil {
			b.Seal()
			r.srv.Fail(w, err)
			return
		}
		if err := b.Wait(ctx); err != nil {
			r.srv.Fail(w, err)
			return
		}
		r.log.Warn("audit webhook body rejected", "reason", reject, "bytes", len(body), "remote", req.RemoteAddr)
		ingress.Reply(w, http.StatusBadRequest, reject)
		return
	}

	b := r.pub.NewBatch()
	var addErr error
	n := 0
	items.ForEach(func(_, v gjson.Result) bool {
		n++
		raw := rawOf(body, v)
		id, why := k8saudit.EventID(raw)
		rec := publish.Record{Source: topology.SourceK8sAudit, Data: raw, ID: id, Observed: now, Key: entitykey.K8sAudit(raw)}
		if why != "" {
			rec.ID = msgid.FromContent(topology.SourceK8sAudit, raw)
			r.log.Warn("audit webhook event rejected", "event_id", rec.ID, "item", n-1, "reason", why)
			addErr = b.AddDeadLetter(ctx, rec, fmt.Sprintf("audit webhook: items[%d]: %s", n-1, why))
		} else {
			addErr = b.Add(ctx, rec)
		}
		return addErr == nil
	})
	if addErr != nil {
		b.Seal()
		r.srv.Fail(w, fmt.Errorf("publish event %d of the batch: %w", n, addErr))
		return
	}
	if err := b.Wait(ctx); err != nil {
		r.srv.Fail(w, fmt.Errorf("wait for %d events: %w", n, err))
		return
	}
	ingress.Reply(w, http.StatusOK, fmt.Sprintf("%d events stored", n))
}

// parseList checks that body is an audit.k8s.io/v1 EventList and returns
// its items; or why it is not one.
func parseList(body []byte) (gjson.Result, string) {
	if !gjson.ValidBytes(body) {
		return gjson.Result{}, "body is not valid JSON"
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return gjson.Result{}, "body is not a JSON object"
	}
	r := gjson.GetManyBytes(body, "kind", "apiVersion", "items")
	kind, apiVersion, items := r[0], r[1], r[2]
	switch {
	case kind.Str != "EventList":
		return gjson.Result{}, "kind is " + rawOrMissing(kind) + ", want EventList"
	case apiVersion.Str != "audit.k8s.io/v1":
		return gjson.Result{}, "apiVersion is " + rawOrMissing(apiVersion) + ", want audit.k8s.io/v1"
	case items.Exists() && !items.IsArray():
		return gjson.Result{}, "items is not an array"
	}
	return items, ""
}

// rawOf returns v's bytes inside body without copying when gjson knows
// where they are. The body outlives the records: it is held until the
// request is answered, after every acknowledgement.
func rawOf(body []byte, v gjson.Result) []byte {
	if v.Index > 0 && v.Index+len(v.Raw) <= len(body) && string(body[v.Index:v.Index+len(v.Raw)]) == v.Raw {
		return body[v.Index : v.Index+len(v.Raw) : v.Index+len(v.Raw)]
	}
	return []byte(v.Raw)
}

// rawOrMissing shows a value in a reason, capped.
func rawOrMissing(v gjson.Result) string {
	const limit = 64
	switch {
	case !v.Exists():
		return "missing"
	case len(v.Raw) > limit:
		return v.Raw[:limit] + "…"
	}
	return v.Raw
}
