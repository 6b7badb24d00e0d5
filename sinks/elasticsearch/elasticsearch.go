package elasticsearch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Sink writes events and alerts to Elasticsearch data streams with the _bulk
// API. See the package documentation.
type Sink struct {
	cfg       Config
	log       *slog.Logger
	client    *es.Client
	transport *http.Transport
	templates map[sink.Kind]*template
	// actions holds, per kind, the start of every bulk action line:
	// {"create":{"_index":"<data stream>","_id":
	actions map[sink.Kind][]byte
	bufs    sync.Pool // *bulkBuffers

	setupMu   sync.Mutex
	setupDone bool

	// The start-up attempt at setup runs on its own context, cancelled by
	// Close.
	bgCancel context.CancelFunc
	bgDone   chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var _ sink.Sink = (*Sink)(nil)

// New returns a sink for cfg. It performs no request itself: the templates
// are installed in the background at once and, until that succeeded, again
// before each write, so a server that is down at start-up delays the first
// write rather than failing the process.
func New(cfg Config, set sink.Settings) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("elasticsearch sink: %w", err)
	}
	templates, err := loadTemplates()
	if err != nil {
		return nil, fmt.Errorf("elasticsearch sink: %w", err)
	}
	client, tr, err := newClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch sink: %w", err)
	}
	s := &Sink{
		cfg:       cfg,
		log:       set.LoggerOrDiscard(),
		client:    client,
		transport: tr,
		templates: templates,
		actions:   map[sink.Kind][]byte{},
		bgDone:    make(chan struct{}),
	}
	s.bufs.New = func() any { return new(bulkBuffers) }
	for k, t := range templates {
		s.actions[k] = []byte(`{"create":{"_index":"` + dataStream(t.prefix, cfg.Namespace) + `","_id":`)
	}
	var bg context.Context
	bg, s.bgCancel = context.WithCancel(context.Background())
	go func() {
		defer close(s.bgDone)
		if err := s.ensureSetup(bg); err != nil && bg.Err() == nil {
			s.log.Warn("installing the templates failed; retrying before the first write", "err", err)
		}
	}()
	return s, nil
}

// DataStream returns the data stream records of kind k are written to.
func (s *Sink) DataStream(k sink.Kind) string {
	t := s.templates[k]
	if t == nil {
		return ""
	}
	return dataStream(t.prefix, s.cfg.Namespace)
}

// ensureSetup installs the templates unless that was done.
func (s *Sink) ensureSetup(ctx context.Context) error {
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	if s.setupDone {
		return nil
	}
	if err := s.setup(ctx); err != nil {
		return err
	}
	s.setupDone = true
	return nil
}

// WriteBatch writes the batch with one or more _bulk requests (split by
// max_request_bytes) of create actions with _id = event.id. See the package
// documentation for what each outcome becomes.
func (s *Sink) WriteBatch(ctx context.Context, batch []sink.Record) error {
	if len(batch) == 0 {
		return nil
	}
	if err := s.ensureSetup(ctx); err != nil {
		return fmt.Errorf("elasticsearch sink: install templates: %w", err)
	}
	b := s.bufs.Get().(*bulkBuffers)
	defer s.bufs.Put(b)
	w := bulkWrite{s: s, b: b, batch: batch, be: sink.NewBatchError()}
	return w.run(ctx)
}

// do performs one request other than a bulk one.
func (s *Sink) do(ctx context.Context, req esapi.Request) (reply, error) {
	return do(ctx, s.client, s.cfg.RequestTimeout, req)
}

// Close stops the start-up setup if it still runs and closes the client's
// connections. Nothing is buffered: every write finished within WriteBatch.
// It is safe to call twice.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.bgCancel()
		select {
		case <-s.bgDone:
		case <-ctx.Done():
			s.closeErr = fmt.Errorf("elasticsearch sink: close: %w", ctx.Err())
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.client.Close(cctx); err != nil && !errors.Is(err, es.ErrAlreadyClosed) {
			s.closeErr = fmt.Errorf("elasticsearch sink: close: %w", err)
		}
		s.transport.CloseIdleConnections()
	})
	return s.closeErr
}
