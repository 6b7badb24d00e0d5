package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// DefaultListen is where stage binaries and `crowsnest run` serve telemetry
// unless told otherwise: loopback only, since /readyz shows error messages.
// 9464 is the port OpenTelemetry's Prometheus exporter uses.
const DefaultListen = "127.0.0.1:9464"

// Config is the "telemetry" section of every stage's configuration.
type Config struct {
	// Listen is the host:port of the /metrics, /healthz and /readyz server.
	// Empty disables the server; port 0 picks a free port.
	Listen string `yaml:"listen"`
}

// NewDefaultConfig returns a Config serving on [DefaultListen]. The zero
// Config serves nothing.
func NewDefaultConfig() Config {
	return Config{Listen: DefaultListen}
}

// Validate checks that Listen is empty or host:port with a numeric port. The
// host may be empty (every interface), an IP address or a name.
func (c Config) Validate() error {
	if c.Listen == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return config.FieldError("listen", "want host:port, such as %s: %w", DefaultListen, err)
	}
	if strings.ContainsAny(host, " \t/") {
		return config.FieldError("listen", "invalid host %q", host)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(p, 10) {
		return config.FieldError("listen", "port %q must be a number from 0 to 65535", port)
	}
	return nil
}

// Timeouts of the telemetry server. A scrape of a healthy process takes
// milliseconds; these only bound a stuck or slow client.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	scrapeTimeout     = 20 * time.Second // below writeTimeout, so the 503 gets out

	// ReadinessCheckTimeout bounds each readiness check; a check must
	// honour its context.
	ReadinessCheckTimeout = 3 * time.Second
)

// Server serves /metrics (the registry given to New), /healthz (200 while the
// process can answer) and /readyz (200 when every readiness check passes, 503
// and the failing checks otherwise).
//
// Start it once; Shutdown is safe to call before Start, and more than once.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	handler http.Handler

	checksMu sync.Mutex
	checks   map[string]readinessCheck

	mu       sync.Mutex
	started  bool
	closed   bool
	srv      *http.Server
	addr     string
	done     chan struct{} // closed when Serve has returned
	serveErr error         // set before done is closed
	shutdown chan struct{} // closed when the first Shutdown has finished
	shutErr  error
}

type readinessCheck struct {
	fn      func(context.Context) error
	failing bool // at the last probe, to log changes rather than every probe
}

// New returns a Server for cfg that serves reg. A nil logger discards; a nil
// registry serves no metrics.
func New(cfg Config, reg *prometheus.Registry, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      cfg,
		logger:   logger,
		checks:   make(map[string]readinessCheck),
		shutdown: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            promLogger{logger},
		ErrorHandling:       promhttp.ContinueOnError, // a broken collector must not hide the rest
		Registry:            reg,                      // counts promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 4,
		Timeout:             scrapeTimeout,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	s.handler = mux
	return s
}

// Handler returns the server's routes, to mount elsewhere or test without a
// listener.
func (s *Server) Handler() http.Handler { return s.handler }

// RegisterReadiness adds a check that /readyz runs on every request; the
// process is ready when every check returns nil. A check gets a context
// bounded by [ReadinessCheckTimeout] and must return promptly; checks run
// concurrently. Registering a name again replaces its check. It may be called
// before or after Start. It panics if check is nil, as http.Handle does.
func (s *Server) RegisterReadiness(name string, check func(ctx context.Context) error) {
	if check == nil {
		panic("telemetry: nil readiness check " + strconv.Quote(name))
	}
	s.checksMu.Lock()
	defer s.checksMu.Unlock()
	s.checks[name] = readinessCheck{fn: check}
}

// readyBody is the /readyz response: every check with "ok" or its error.
type readyBody struct {
	Status string            `json:"status"` // "ready" or "not ready"
	Checks map[string]string `json:"checks"`
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	s.checksMu.Lock()
	names := make([]string, 0, len(s.checks))
	fns := make([]func(context.Context) error, 0, len(s.checks))
	for name, c := range s.checks {
		names = append(names, name)
		fns = append(fns, c.fn)
	}
	s.checksMu.Unlock()

	ctx, cancel := context.WithTimeout(r.Context(), ReadinessCheckTimeout)
	defer cancel()
	results := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { results[i] = runCheck(ctx, fn) })
	}
	wg.Wait()

	body := readyBody{Status: "ready", Checks: make(map[string]string, len(names))}
	for i, name := range names {
		body.Checks[name] = "ok"
		if results[i] != nil {
			body.Status = "not ready"
			body.Checks[name] = results[i].Error()
		}
	}
	s.logTransitions(names, results)

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if body.Status != "ready" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if err := json.NewEncoder(w).Encode(body); err != nil {
		s.logger.Debug("write readiness response", "error", err)
	}
}

// runCheck runs one check, turning a panic into a failure: the check runs on
// a goroutine of ours, where a panic would otherwise end the process.
func runCheck(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	return fn(ctx)
}

// logTransitions logs a check when it starts failing and when it recovers,
// not on every probe.
func (s *Server) logTransitions(names []string, results []error) {
	s.checksMu.Lock()
	defer s.checksMu.Unlock()
	for i, name := range names {
		c, ok := s.checks[name]
		failing := results[i] != nil
		if !ok || c.failing == failing {
			continue
		}
		c.failing = failing
		s.checks[name] = c
		if failing {
			s.logger.Warn("not ready", "check", name, "error", results[i])
		} else {
			s.logger.Info("ready again", "check", name)
		}
	}
}

// Start listens on cfg.Listen and serves in the background until Shutdown.
// It returns once the listener is bound (see Addr), or at once, doing
// nothing, when Listen is empty. ctx bounds only the bind.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("telemetry: start after shutdown")
	case s.started:
		return errors.New("telemetry: already started")
	}
	s.started = true
	if s.cfg.Listen == "" {
		s.logger.Info("telemetry server disabled")
		return nil
	}
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("telemetry: listen: %w", err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("telemetry server stopped", "error", err)
			s.serveErr = err
		}
	}()
	s.logger.Info("telemetry server listening", "addr", s.addr)
	return nil
}

// Addr returns the address the server is bound to ("127.0.0.1:41234" when
// Listen asked for port 0), or "" when it is not serving.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops the server: it stops accepting, lets requests in flight
// finish until ctx ends, then closes what remains. It is safe before Start
// (Start then fails) and when called again, which waits for the first call
// and returns its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		select {
		case <-s.shutdown:
			return s.shutErr
		case <-ctx.Done():
			return fmt.Errorf("telemetry: shutdown: %w", ctx.Err())
		}
	}
	s.closed = true
	srv, done := s.srv, s.done
	s.mu.Unlock()

	defer close(s.shutdown)
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		// Out of time: drop the connections still open.
		err = errors.Join(err, srv.Close())
	}
	<-done
	if err != nil {
		s.shutErr = fmt.Errorf("telemetry: shutdown: %w", err)
	} else if s.serveErr != nil {
		s.shutErr = fmt.Errorf("telemetry: serve: %w", s.serveErr)
	}
	s.mu.Lock()
	s.addr = ""
	s.mu.Unlock()
	return s.shutErr
}

// promLogger passes promhttp's errors (a failing collector) to slog.
type promLogger struct{ logger *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.logger.Error("serve metrics", "error", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
