package ingress

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// Config is what a user writes about a listening source.
type Config struct {
	// Listen is the address to serve on, host:port.
	Listen string `yaml:"listen"`
	// TLS is the server certificate and, optionally, the CA that client
	// certificates must chain to. Required unless allow_insecure_loopback.
	TLS TLSConfig `yaml:"tls"`
	// BearerTokenFile holds the token clients must send as
	// "Authorization: Bearer <token>" (read once at start; a trailing
	// newline is ignored). With tls.client_ca_file set too, a client needs
	// both.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// AllowInsecureLoopback permits plain HTTP when no certificate is
	// configured, and only on a loopback address: for development.
	AllowInsecureLoopback bool `yaml:"allow_insecure_loopback"`
	// MaxBodyBytes caps a request body; a larger one is answered 413.
	MaxBodyBytes config.ByteSize `yaml:"max_body_bytes"`
	// RequestTimeout bounds one request, reading the body and waiting for
	// JetStream's acknowledgements included; past it the answer is 503
	// with Retry-After and the client sends again (message ids make that
	// safe).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxInFlightRequests bounds concurrent requests; past it the answer is
	// 429 with Retry-After.
	MaxInFlightRequests int `yaml:"max_in_flight_requests"`
	// RetryAfter is the delay suggested to clients in 429 and 503 answers.
	RetryAfter time.Duration `yaml:"retry_after"`
}

// TLSConfig names the certificate files.
type TLSConfig struct {
	// CertFile and KeyFile are the server's PEM certificate (chain) and key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires every client to present a
	// certificate chaining to one of these PEM CAs.
	ClientCAFile string `yaml:"client_ca_file"`
	// MinVersion is "1.2" or "1.3".
	MinVersion string `yaml:"min_version"`
}

// NewDefaultConfig listens on listen with TLS 1.2+, 16 MiB bodies, 10 s
// per request, 64 requests in flight, Retry-After 5 s. Certificates and
// authentication are the user's to give.
func NewDefaultConfig(listen string) Config {
	return Config{
		Listen:              listen,
		TLS:                 TLSConfig{MinVersion: "1.2"},
		MaxBodyBytes:        16 * config.MiB,
		RequestTimeout:      10 * time.Second,
		MaxInFlightRequests: 64,
		RetryAfter:          5 * time.Second,
	}
}

// Insecure reports whether the config serves plain HTTP.
func (c Config) Insecure() bool { return c.TLS.CertFile == "" && c.TLS.KeyFile == "" }

// HasAuth reports whether clients must authenticate.
func (c Config) HasAuth() bool { return c.TLS.ClientCAFile != "" || c.BearerTokenFile != "" }

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		errs = append(errs, config.FieldError("listen", "must be host:port, got %q: %w", c.Listen, err))
	}
	switch {
	case (c.TLS.CertFile == "") != (c.TLS.KeyFile == ""):
		errs = append(errs, config.FieldError("tls", "cert_file and key_file go together"))
	case c.Insecure() && !c.AllowInsecureLoopback:
		errs = append(errs, config.FieldError("tls", "cert_file and key_file must be set (plain HTTP needs allow_insecure_loopback and a loopback listen address)"))
	case c.Insecure() && err == nil && !IsLoopback(host):
		errs = append(errs, config.FieldError("listen", "plain HTTP is served only on a loopback address (127.0.0.1, ::1, localhost), got %q: configure tls", c.Listen))
	}
	if c.Insecure() && c.TLS.ClientCAFile != "" {
		errs = append(errs, config.FieldError("tls.client_ca_file", "needs TLS: set cert_file and key_file"))
	}
	if _, err := tlsVersion(c.TLS.MinVersion); err != nil {
		errs = append(errs, config.FieldError("tls.min_version", "%w", err))
	}
	if c.MaxBodyBytes < 1*config.KiB || c.MaxBodyBytes > 1*config.GiB {
		errs = append(errs, config.FieldError("max_body_bytes", "must be between 1KiB and 1GiB, got %s", c.MaxBodyBytes))
	}
	if c.RequestTimeout < 100*time.Millisecond {
		errs = append(errs, config.FieldError("request_timeout", "must be at least 100ms, got %s", c.RequestTimeout))
	}
	if c.MaxInFlightRequests < 1 {
		errs = append(errs, config.FieldError("max_in_flight_requests", "must be at least 1, got %d", c.MaxInFlightRequests))
	}
	if c.RetryAfter < time.Second {
		errs = append(errs, config.FieldError("retry_after", "must be at least 1s (Retry-After counts seconds), got %s", c.RetryAfter))
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host (no port) is a loopback address or
// "localhost".
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func tlsVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, errors.New(`must be "1.2" or "1.3"`)
}
