package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Sink posts records to an HTTP endpoint. See the package documentation.
type Sink struct {
	cfg      Config
	endpoint string        // the URL: a secret, never logged
	where    string        // scheme://host, what logs and errors name
	auth     config.Secret // the Authorization header
	client   *http.Client
	render   *renderer
	jsonBody bool // the body must be JSON (checked for template bodies)
	log      *slog.Logger
	m        *metrics
	now      func() time.Time

	mu        sync.Mutex
	notBefore time.Time // no request before this: the endpoint's Retry-After
}

var _ sink.Sink = (*Sink)(nil)

// New resolves the secrets, loads the TLS files and returns a sink. It sends
// nothing: an endpoint that is down at start-up is a retryable failure of the
// first batch, not a start-up error.
func New(cfg Config, set sink.Settings) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook sink: %w", err)
	}
	endpoint, err := config.ResolveSecret(cfg.URL, cfg.URLFile)
	if err != nil {
		return nil, fmt.Errorf("webhook sink: url_file: %w", err)
	}
	if err := checkURL(endpoint.Value()); err != nil {
		return nil, fmt.Errorf("webhook sink: url_file: %w", err)
	}
	u, _ := url.Parse(endpoint.Value()) // checked just above
	auth, err := config.ResolveSecret(cfg.Authorization, cfg.AuthorizationFile)
	if err != nil {
		return nil, fmt.Errorf("webhook sink: authorization_file: %w", err)
	}
	if strings.ContainsAny(auth.Value(), "\r\n\x00") {
		return nil, errors.New("webhook sink: authorization contains a line break or NUL")
	}
	tlsCfg, err := cfg.TLS.config()
	if err != nil {
		return nil, fmt.Errorf("webhook sink: tls: %w", err)
	}
	render, err := newRenderer(cfg.Payload, cfg.Template)
	if err != nil {
		return nil, fmt.Errorf("webhook sink: template: %w", err)
	}
	m, err := newMetrics(set.Metrics)
	if err != nil {
		return nil, fmt.Errorf("webhook sink: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	transport.MaxIdleConnsPerHost = cfg.MaxConcurrentRequests
	return &Sink{
		cfg:      cfg,
		endpoint: endpoint.Value(),
		where:    u.Scheme + "://" + u.Host,
		auth:     auth,
		client: &http.Client{
			Transport: transport,
			// A redirect would resend alerts to wherever the answer points
			// (a POST turned into a GET, at that): the configured URL is
			// the only destination.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		render:   render,
		jsonBody: cfg.Payload != PayloadTemplate || isJSONType(cfg.ContentType),
		log:      set.LoggerOrDiscard().With("sink", Type, "endpoint", u.Scheme+"://"+u.Host),
		m:        m,
		now:      time.Now,
	}, nil
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func (t TLSConfig) config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // only when the config says so, explicitly
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// WriteBatch posts the batch: each record alone (record mode) or all in one
// body (batch mode). See the package documentation for how answers map to
// outcomes.
func (s *Sink) WriteBatch(ctx context.Context, batch []sink.Record) error {
	if err := s.waitRetryAfter(ctx); err != nil {
		return err
	}
	bodies := make([][]byte, len(batch))
	be := sink.NewBatchError()
	var ok []int // indexes of the records that rendered
	for i, r := range batch {
		b, err := s.render.one(r)
		if err == nil && s.jsonBody && !json.Valid(b) {
			err = errors.New("the template rendered a body that is not JSON")
		}
		if err != nil {
			be.Failed(i, sink.Permanent(fmt.Errorf("record %s: %w", r.ID, err)))
			continue
		}
		bodies[i] = b
		ok = append(ok, i)
	}
	if len(ok) == 0 {
		return be
	}
	if s.cfg.Mode == ModeBatch && len(ok) > 1 {
		parts := make([][]byte, len(ok))
		ids := make([]string, len(ok))
		for j, i := range ok {
			parts[j], ids[j] = bodies[i], batch[i].ID
		}
		err := s.post(ctx, s.render.many(parts), batchKey(ids))
		switch {
		case err == nil:
		case sink.IsPermanent(err):
			// The endpoint refused the body, and a body is many records:
			// send them one by one, so that only the ones it refuses are
			// dead-lettered.
			s.log.Warn("batch refused, sending its records one by one to find the refused ones", "records", len(ok), "error", err)
			s.eachRecord(ctx, batch, bodies, ok, be)
		default:
			for _, i := range ok {
				be.Failed(i, err)
			}
		}
	} else {
		s.eachRecord(ctx, batch, bodies, ok, be)
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

// eachRecord posts the records at indexes idx one per request, at most
// MaxConcurrentRequests at a time, recording failures in be. After a
// retryable failure it sends nothing more: the endpoint is down or asked to
// slow down, and the rest fail with the same error, to be retried later.
func (s *Sink) eachRecord(ctx context.Context, batch []sink.Record, bodies [][]byte, idx []int, be *sink.BatchError) {
	var (
		mu      sync.Mutex
		stopped error
		wg      sync.WaitGroup
		slots   = make(chan struct{}, s.cfg.MaxConcurrentRequests)
	)
	fail := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		be.Failed(i, err)
		if !sink.IsPermanent(err) && stopped == nil {
			stopped = err
		}
	}
	for _, i := range idx {
		slots <- struct{}{}
		mu.Lock()
		stop := stopped
		mu.Unlock()
		if stop != nil {
			<-slots
			fail(i, fmt.Errorf("not sent: %w", stop))
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := s.post(ctx, bodies[i], batch[i].ID); err != nil {
				fail(i, fmt.Errorf("record %s: %w", batch[i].ID, err))
			}
		})
	}
	wg.Wait()
}

// batchKey is the idempotency key of a batch body: the same records give the
// same key, so a receiver can recognise a redelivered batch.
func batchKey(ids []string) string {
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return "batch-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// maxErrorBody is how much of an error answer is kept for the error message.
const maxErrorBody = 512

// post sends one body and classifies the answer: nil for 2xx; a permanent
// error for the answers retrying cannot change; a retryable error for
// network failures, 408, 425, 429 and 5xx.
func (s *Sink) post(ctx context.Context, body []byte, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return sink.Permanent(fmt.Errorf("build request to %s: %w", s.where, redact(err)))
	}
	ct := "application/json"
	if s.cfg.Payload == PayloadTemplate {
		ct = s.cfg.ContentType
	}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "crowsnest-webhook")
	req.Header.Set("Idempotency-Key", key)
	if s.auth.IsSet() {
		req.Header.Set("Authorization", s.auth.Value())
	}
	start := s.now()
	resp, err := s.client.Do(req)
	s.m.duration.Observe(s.now().Sub(start).Seconds())
	if err != nil {
		s.m.requests("error")
		return fmt.Errorf("post to %s: %w", s.where, redact(err))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
		_ = resp.Body.Close()
	}()
	s.m.requests(strconv.Itoa(resp.StatusCode))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	err = fmt.Errorf("%s answered %s: %s", s.where, resp.Status, bytes.TrimSpace(snippet))
	if !retryable(resp.StatusCode) {
		return sink.Permanent(err)
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), s.now()); ok {
		s.holdOff(min(d, s.cfg.MaxRetryAfter))
	}
	return err
}

// retryable reports whether an HTTP status may succeed on a later try.
func retryable(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

// redact replaces the URL in a client error by nothing: it may hold a token.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// holdOff keeps requests back for d.
func (s *Sink) holdOff(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.now().Add(d); t.After(s.notBefore) {
		s.notBefore = t
		s.log.Warn("endpoint asked to retry later; holding requests back", "retry_after", d)
	}
}

// errHeldOff is the retryable failure of a batch not sent because the
// endpoint's Retry-After outlasts the write's deadline.
var errHeldOff = errors.New("endpoint asked to retry later")

// waitRetryAfter waits until the endpoint's Retry-After has passed, or fails
// at once (retryably) if ctx ends before then: the runner retries later
// without a request reaching the endpoint early.
func (s *Sink) waitRetryAfter(ctx context.Context) error {
	s.mu.Lock()
	until := s.notBefore
	s.mu.Unlock()
	wait := until.Sub(s.now())
	if wait <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
		return fmt.Errorf("%w: not before %s", errHeldOff, until.UTC().Format(time.RFC3339))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errHeldOff, ctx.Err())
	}
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// Close releases idle connections.
func (s *Sink) Close(context.Context) error {
	s.client.CloseIdleConnections()
	return nil
}
