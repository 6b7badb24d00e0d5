package natsconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/internal/fielderr"
)

// Connect connects per cfg and returns the connection and a JetStream handle
// made with jsOpts. While the server is unreachable it retries every
// reconnect.wait until ctx ends; errors no retry can fix (bad credentials,
// unreadable files, certificate problems) return at once. logger receives
// the connection's life at stable keys (url, server, error); nil discards.
// The caller closes the connection (Drain or Close).
func Connect(ctx context.Context, cfg Config, logger *slog.Logger, jsOpts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("connect to nats: invalid config:\n%w", fielderr.Prefix(ConfigKey, err))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("component", "nats-client")
	opts, err := options(cfg, log)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats: %w", err)
	}
	if cfg.TLS.InsecureSkipVerify {
		log.Warn("nats TLS certificate verification is off (nats.tls.insecure_skip_verify); use only in a lab")
	}
	url := redactURL(cfg.URL)
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(cfg.URL, opts...)
		if err == nil {
			js, err := jetstream.New(nc, jsOpts...)
			if err != nil {
				nc.Close()
				return nil, nil, fmt.Errorf("connect to nats: jetstream: %w", err)
			}
			return nc, js, nil
		}
		if certRefused(err) {
			return nil, nil, fmt.Errorf("connect to nats at %s: the server refused this client's TLS certificate (%s.tls.cert_file and key_file: missing, expired, or not signed by a CA the server trusts): %w", url, ConfigKey, err)
		}
		if permanent(err) {
			return nil, nil, fmt.Errorf("connect to nats at %s: %w", url, err)
		}
		log.Warn("nats not reachable, retrying", "url", url, "attempt", attempt, "error", err, "retry_in", cfg.Reconnect.Wait)
		t := time.NewTimer(cfg.Reconnect.Wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("connect to nats at %s: gave up after %d attempts: %w (last error: %w)", url, attempt, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// options translates cfg into nats.go options, checking the files it names
// so that a typo in a path is reported by field, not as a connect failure.
func options(cfg Config, log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.PingInterval(cfg.PingInterval),
		nats.MaxPingsOutstanding(cfg.MaxPingsOutstanding),
		nats.MaxReconnects(cfg.Reconnect.MaxAttempts),
		nats.ReconnectWait(cfg.Reconnect.Wait),
		nats.ReconnectJitter(cfg.Reconnect.Jitter, cfg.Reconnect.JitterTLS),
		nats.ReconnectBufSize(int(cfg.Reconnect.BufferSize)),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("connected to nats", "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName(), "server_version", nc.ConnectedServerVersion())
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil {
				return // a deliberate Close; ClosedHandler logs it
			}
			log.Warn("disconnected from nats; publishes are buffered until reconnected", "url", redactURL(cfg.URL), "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to nats", "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName())
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Debug("nats reconnect attempt failed", "error", err)
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				log.Error("nats connection closed", "error", err)
				return
			}
			log.Info("nats connection closed")
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			log.Warn("nats server is shutting down (lame duck); will reconnect to another", "server", nc.ConnectedServerName())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("nats async error", "subject", sub.Subject, "error", err)
				return
			}
			log.Error("nats async error", "error", err)
		}),
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	var errs []error
	check := func(path, file string) bool {
		if file == "" {
			return false
		}
		if _, err := os.Stat(file); err != nil {
			errs = append(errs, fielderr.New(path, "%w", err))
			return false
		}
		return true
	}
	if check("creds_file", cfg.CredsFile) {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if check("nkey_file", cfg.NKeyFile) {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			// Not wrapped with %w: nats.go's message may quote the file.
			errs = append(errs, fielderr.New("nkey_file", "not a usable nkey seed file"))
		} else {
			opts = append(opts, o)
		}
	}
	if cfg.TLS.Enabled() {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify}
		if check("tls.ca_file", cfg.TLS.CAFile) {
			pem, err := os.ReadFile(cfg.TLS.CAFile)
			pool := x509.NewCertPool()
			switch {
			case err != nil:
				errs = append(errs, fielderr.New("tls.ca_file", "%w", err))
			case !pool.AppendCertsFromPEM(pem):
				errs = append(errs, fielderr.New("tls.ca_file", "no PEM certificate in %s", cfg.TLS.CAFile))
			default:
				tc.RootCAs = pool
			}
		}
		if check("tls.cert_file", cfg.TLS.CertFile) && check("tls.key_file", cfg.TLS.KeyFile) {
			cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
			if err != nil {
				errs = append(errs, fielderr.New("tls.cert_file", "load certificate and key: %w", err))
			} else {
				tc.Certificates = []tls.Certificate{cert}
			}
		}
		opts = append(opts, nats.Secure(tc))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fielderr.Prefix(ConfigKey, err)
	}
	return opts, nil
}

// certRefused reports a server refusing the client's certificate (mutual
// TLS): a TLS alert from the server during the handshake (TLS 1.2), or the
// server closing the connection right after it (TLS 1.3, where the client
// finishes its handshake before the server has checked its certificate).
// Retrying the same certificate cannot help.
func certRefused(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return true
	}
	return errors.Is(err, nats.ErrTLS) && strings.Contains(err.Error(), "closed by remote after TLS handshake")
}

// permanent reports errors that retrying the same config cannot fix.
func permanent(err error) bool {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.Is(err, nats.ErrNkeysNotSupported) || errors.Is(err, nats.ErrSecureConnRequired) ||
		errors.Is(err, nats.ErrSecureConnWanted) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return true
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}

// CloseAndWait closes nc and waits, up to timeout, until its closed handler
// (Connect's "nats connection closed" log line) has run, so a short-lived
// command's last log line is written before it returns, not after. It is
// safe on a connection already closed.
func CloseAndWait(nc *nats.Conn, timeout time.Duration) {
	if nc.IsClosed() {
		return
	}
	done := make(chan struct{})
	prev := nc.ClosedHandler()
	nc.SetClosedHandler(func(c *nats.Conn) {
		if prev != nil {
			prev(c)
		}
		close(done)
	})
	nc.Close()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
