package ingress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Settings is what the code gives a Server.
type Settings struct {
	// Source names the source in logs and metric labels.
	Source string
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer takes the HTTP metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Ready, when set, is asked before a request is handled: an error
	// (the bus is unreachable and nothing can take records) is answered
	// 503 with Retry-After at once instead of after request_timeout.
	Ready func() error
}

// Server serves one source's handler behind TLS, authentication and limits.
type Server struct {
	cfg      Config
	log      *slog.Logger
	ln       net.Listener
	srv      *http.Server
	token    [sha256.Size]byte // sha256 of the bearer token, when hasToken
	hasToken bool
	slots    chan struct{}
	m        *metrics
	source   string
	ready    func() error
}

// New validates cfg, loads the certificates and the token, and binds the
// listen address (so that Addr is known before Run).
func New(cfg Config, s Settings, h http.Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(s.Registerer, s.Source)
	if err != nil {
		return nil, err
	}
	srv := &Server{
		cfg:    cfg,
		log:    log.With("component", "ingress", "source", s.Source),
		slots:  make(chan struct{}, cfg.MaxInFlightRequests),
		m:      m,
		source: s.Source,
		ready:  s.Ready,
	}
	if cfg.BearerTokenFile != "" {
		b, err := os.ReadFile(cfg.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("read bearer_token_file: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("bearer_token_file %s is empty", cfg.BearerTokenFile)
		}
		srv.token, srv.hasToken = sha256.Sum256(b), true
	}
	var tlsCfg *tls.Config
	if !cfg.Insecure() {
		if tlsCfg, err = loadTLS(cfg.TLS); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv.ln = ln
	srv.srv = &http.Server{
		Handler:           srv.wrap(h),
		ReadHeaderTimeout: min(cfg.RequestTimeout, 10*time.Second),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(srv.log.Handler(), slog.LevelDebug),
	}
	return srv, nil
}

func loadTLS(c TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls cert_file/key_file: %w", err)
	}
	minV, err := tlsVersion(c.MinVersion)
	if err != nil {
		return nil, err
	}
	out := &tls.Config{MinVersion: minV, Certificates: []tls.Certificate{cert}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.client_ca_file %s holds no PEM certificate", c.ClientCAFile)
		}
		out.ClientCAs = pool
		out.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return out, nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the base URL clients use, http or https.
func (s *Server) URL() string {
	if s.cfg.Insecure() {
		return "http://" + s.ln.Addr().String()
	}
	return "https://" + s.ln.Addr().String()
}

// Run serves until ctx ends, then stops taking connections and waits up to
// request_timeout for requests being answered. It closes the listener.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("listening", "addr", s.ln.Addr().String(), "tls", !s.cfg.Insecure(),
		"client_cert", s.cfg.TLS.ClientCAFile != "", "bearer_token", s.hasToken)
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", s.cfg.Listen, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
		return errors.Join(ctx.Err(), fmt.Errorf("shut down %s: %w", s.cfg.Listen, err))
	}
	<-errc // http.ErrServerClosed
	return ctx.Err()
}

// Close closes the listener without serving (after New, instead of Run).
func (s *Server) Close() error { return s.srv.Close() }

// wrap puts limits, authentication and metrics around h.
func (s *Server) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w}
		defer func() { s.m.observe(rw.code(), time.Since(start)) }()
		// The context does not interrupt a body read: without a deadline on
		// the connection a client that stalls or trickles its body would hold
		// a request slot forever, and a handful of them would lock the API
		// server out. The write deadline leaves room to answer after a
		// request_timeout spent waiting for acknowledgements. Both are set
		// first, so that every answer, the early refusals too, is bounded.
		rc := http.NewResponseController(rw)
		if err := rc.SetReadDeadline(start.Add(s.cfg.RequestTimeout)); err != nil {
			s.log.Debug("set read deadline", "error", err)
		}
		if err := rc.SetWriteDeadline(start.Add(2 * s.cfg.RequestTimeout)); err != nil {
			s.log.Debug("set write deadline", "error", err)
		}

		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			Reply(rw, http.StatusMethodNotAllowed, "POST only")
			return
		}
		if s.hasToken && !s.tokenOK(r) {
			s.log.Warn("request refused: bad or missing bearer token", "remote", r.RemoteAddr)
			rw.Header().Set("WWW-Authenticate", `Bearer realm="crowsnest"`)
			Reply(rw, http.StatusUnauthorized, "bearer token required")
			return
		}
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			s.m.rejected()
			s.TooBusy(rw)
			return
		}
		if s.ready != nil {
			if err := s.ready(); err != nil {
				s.Unavailable(rw, err.Error())
				return
			}
		}
		s.m.inFlight(1)
		defer s.m.inFlight(-1)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(rw, r.Body, int64(s.cfg.MaxBodyBytes))
		h.ServeHTTP(rw, r)
	})
}

func (s *Server) tokenOK(r *http.Request) bool {
	v := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return false
	}
	// Hash both sides so the comparison takes the same time whatever the
	// lengths.
	got := sha256.Sum256([]byte(strings.TrimSpace(v[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

// ReadBody reads the whole (size-capped) body. On error it has answered
// already (413 too large, 408 too slow, 400 otherwise) and the caller just
// returns.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		// Content-Length is the client's claim: pre-size modestly, the
		// size-capped reader bounds the rest.
		buf.Grow(int(min(r.ContentLength, 1<<20)))
	}
	_, err := buf.ReadFrom(r.Body)
	if err == nil {
		return buf.Bytes(), true
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		Reply(w, http.StatusRequestEntityTooLarge, "body larger than max_body_bytes")
		return nil, false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		Reply(w, http.StatusRequestTimeout, "body not received within request_timeout")
		return nil, false
	}
	Reply(w, http.StatusBadRequest, "read body: "+err.Error())
	return nil, false
}

// Reply answers code with a one-line JSON body.
func Reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b := []byte(`{"code":` + strconv.Itoa(code) + `,"message":` + strconv.Quote(msg) + "}\n")
	_, _ = w.Write(b) // the client went away: nothing else to tell it
}

// Unavailable answers 503 with Retry-After: JetStream did not take the
// records in time; the client sends them again.
func (s *Server) Unavailable(w http.ResponseWriter, why string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
	Reply(w, http.StatusServiceUnavailable, why)
}

// TooBusy answers 429 with Retry-After.
func (s *Server) TooBusy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
	Reply(w, http.StatusTooManyRequests, "too many requests in flight; retry later")
}

// Fail answers a publish failure: 503 with Retry-After for anything that a
// retry can cure (JetStream unreachable, spool full, timeout, shutting
// down), 500 for a bug.
func (s *Server) Fail(w http.ResponseWriter, err error) {
	if StatusFor(err) == http.StatusServiceUnavailable {
		s.Unavailable(w, "events not acknowledged by the bus: "+err.Error())
		return
	}
	s.log.Error("request failed", "error", err)
	Reply(w, http.StatusInternalServerError, err.Error())
}

// StatusFor is the HTTP status for a publish error: 500 for records that
// can never be published (a bug), 503 for everything else.
func StatusFor(err error) int {
	if errors.Is(err, publish.ErrInvalidRecord) || errors.Is(err, publish.ErrTransform) {
		return http.StatusInternalServerError
	}
	return http.StatusServiceUnavailable
}

// statusWriter remembers the status code for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	if err != nil {
		return n, fmt.Errorf("write response: %w", err)
	}
	return n, nil
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ io.Writer = (*statusWriter)(nil)
