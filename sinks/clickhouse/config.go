package clickhouse

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Config is the ClickHouse sink's config block.
type Config struct {
	// URL is the server: http://host:8123, https://host:8443 (HTTP
	// interface), clickhouse://host:9000 or clickhouses://host:9440 (native
	// protocol, "s" for TLS). No credentials, query or fragment: those have
	// their own keys. Set URL or Addr, not both.
	URL string `yaml:"url"`
	// Addr lists host:port of several servers (tried in order), spoken to
	// with Protocol, for a cluster without a load balancer.
	Addr []string `yaml:"addr"`
	// Protocol is http or native. With URL it follows the scheme and may be
	// left empty; with Addr it says how to speak to them (default http).
	Protocol string `yaml:"protocol"`
	// Database holds the tables; it must be a plain identifier.
	Database string `yaml:"database"`
	// Username and Password (or PasswordFile, read at start) authenticate.
	Username     string        `yaml:"username"`
	Password     config.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	TLS          TLSConfig     `yaml:"tls"`
	// DialTimeout bounds opening a connection; ReadTimeout one response.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// Compression of insert blocks: none, lz4, zstd, gzip, deflate or br
	// (br and gzip/deflate over HTTP only).
	Compression string `yaml:"compression"`
	// AsyncInsert lets the server buffer small inserts (async_insert=1). The
	// sink always waits for the flush (wait_for_async_insert=1), so an
	// acknowledged record is durable, and deduplicates the buffered inserts
	// too (async_insert_deduplicate=1).
	AsyncInsert bool         `yaml:"async_insert"`
	Schema      SchemaConfig `yaml:"schema"`
}

// TLSConfig secures the connection. A URL scheme of https or clickhouses
// turns it on as well.
type TLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile pins the server's certificate authority: only certificates it
	// signed are trusted (the system pool is not consulted). Empty trusts
	// the system pool.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile are a client certificate, for servers that
	// authenticate by certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// SchemaConfig is how the sink treats the tables.
type SchemaConfig struct {
	// Manage creates the database and tables at start and migrates them to
	// the registry (ADD COLUMN, ADD INDEX, TTL), recording each migration in
	// schema_migrations. It needs DDL rights; an INSERT-only user sets it
	// false, and the sink then only checks the tables and warns.
	Manage bool `yaml:"manage"`
	// EventsTTLDays and AlertsTTLDays are how long rows are kept (table
	// TTL on @timestamp); 0 keeps them forever. The defaults are the
	// registry's.
	EventsTTLDays int `yaml:"events_ttl_days"`
	AlertsTTLDays int `yaml:"alerts_ttl_days"`
}

// DefaultURL is where the sink writes unless told otherwise: the local
// server's HTTP interface.
const DefaultURL = "http://127.0.0.1:8123"

// NewDefaultConfig returns the defaults: the local HTTP interface, database
// crowsnest as user default, lz4, synchronous inserts, schema managed with
// the registry's retention (90 days of events, 365 of alerts).
func NewDefaultConfig() Config {
	c := Config{
		URL:         DefaultURL,
		Database:    "crowsnest",
		Username:    "default",
		DialTimeout: 10 * time.Second,
		ReadTimeout: 5 * time.Minute,
		Compression: "lz4",
		Schema:      SchemaConfig{Manage: true, EventsTTLDays: 90, AlertsTTLDays: 365},
	}
	if s, err := RegistrySchema(); err == nil {
		if t := s.Table("events"); t != nil {
			c.Schema.EventsTTLDays = t.TTLDays
		}
		if t := s.Table("alerts"); t != nil {
			c.Schema.AlertsTTLDays = t.TTLDays
		}
	}
	return c
}

// Validate reports every invalid field, joined, each with its key path.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, sink.NewFieldError(path, format, args...))
	}
	switch {
	case c.URL == "" && len(c.Addr) == 0:
		bad("url", "set url or addr")
	case c.URL != "" && len(c.Addr) > 0:
		bad("addr", "set url or addr, not both")
	}
	if c.URL != "" {
		if _, err := parseURL(c.URL, c.Protocol); err != nil {
			bad("url", "%v", err)
		}
	}
	for i, a := range c.Addr {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad(fmt.Sprintf("addr[%d]", i), "want host:port: %v", err)
		}
	}
	switch c.Protocol {
	case "", "http", "native":
	default:
		bad("protocol", "must be http or native, got %q", c.Protocol)
	}
	if err := validateDatabase(c.Database); err != nil {
		bad("database", "%v", err)
	}
	if c.Username == "" {
		bad("username", "must not be empty")
	} else if strings.ContainsFunc(c.Username, unicode.IsControl) {
		bad("username", "must not contain control characters")
	}
	if c.Password.IsSet() && c.PasswordFile != "" {
		bad("password_file", "set password or password_file, not both")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.key_file", "cert_file and key_file go together")
	}
	if c.DialTimeout <= 0 {
		bad("dial_timeout", "must be positive, got %s", c.DialTimeout)
	}
	if c.ReadTimeout <= 0 {
		bad("read_timeout", "must be positive, got %s", c.ReadTimeout)
	}
	if _, err := compressionMethod(c.Compression); err != nil {
		bad("compression", "%v", err)
	}
	if c.Schema.EventsTTLDays < 0 {
		bad("schema.events_ttl_days", "must be 0 (keep forever) or more, got %d", c.Schema.EventsTTLDays)
	}
	if c.Schema.AlertsTTLDays < 0 {
		bad("schema.alerts_ttl_days", "must be 0 (keep forever) or more, got %d", c.Schema.AlertsTTLDays)
	}
	return errors.Join(errs...)
}

// endpoint is where and how to connect, from URL or Addr.
type endpoint struct {
	protocol clickhouse.Protocol
	addr     []string
	tls      bool
	path     string // HTTP path prefix, from the URL
}

func parseURL(raw, protocol string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("not a URL: %w", err)
	}
	var ep endpoint
	var port string
	switch u.Scheme {
	case "http":
		ep.protocol, port = clickhouse.HTTP, "8123"
	case "https":
		ep.protocol, port, ep.tls = clickhouse.HTTP, "8443", true
	case "clickhouse", "tcp":
		ep.protocol, port = clickhouse.Native, "9000"
	case "clickhouses":
		ep.protocol, port, ep.tls = clickhouse.Native, "9440", true
	default:
		return endpoint{}, fmt.Errorf("scheme %q: want http, https, clickhouse or clickhouses", u.Scheme)
	}
	if u.Host == "" {
		return endpoint{}, errors.New("no host")
	}
	if u.User != nil {
		return endpoint{}, errors.New("credentials in the URL: use username and password (or password_file)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, errors.New("no query or fragment: settings have their own keys")
	}
	if protocol != "" && protocol != ep.protocol.String() {
		return endpoint{}, fmt.Errorf("scheme %s speaks %s, but protocol is %s", u.Scheme, ep.protocol, protocol)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), port)
	}
	ep.addr = []string{host}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" {
		if ep.protocol != clickhouse.HTTP {
			return endpoint{}, errors.New("a path applies to http and https only")
		}
		ep.path = p
	}
	return ep, nil
}

func compressionMethod(s string) (clickhouse.CompressionMethod, error) {
	switch s {
	case "", "none":
		return clickhouse.CompressionNone, nil
	case "lz4":
		return clickhouse.CompressionLZ4, nil
	case "zstd":
		return clickhouse.CompressionZSTD, nil
	case "gzip":
		return clickhouse.CompressionGZIP, nil
	case "deflate":
		return clickhouse.CompressionDeflate, nil
	case "br":
		return clickhouse.CompressionBrotli, nil
	}
	return 0, fmt.Errorf("must be none, lz4, zstd, gzip, deflate or br, got %q", s)
}

// retention is the TTL per table the config asks for.
func (c Config) retention() Retention {
	return Retention{"events": c.Schema.EventsTTLDays, "alerts": c.Schema.AlertsTTLDays}
}

// options builds the client options for database db ("" for the user's
// default database). It reads the password and TLS files.
func (c Config) options(db string) (*clickhouse.Options, error) {
	var ep endpoint
	if c.URL != "" {
		var err error
		if ep, err = parseURL(c.URL, c.Protocol); err != nil {
			return nil, fmt.Errorf("url: %w", err)
		}
	} else {
		ep = endpoint{protocol: clickhouse.HTTP, addr: c.Addr}
		if c.Protocol == "native" {
			ep.protocol = clickhouse.Native
		}
	}
	pw, err := config.ResolveSecret(c.Password, c.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	method, err := compressionMethod(c.Compression)
	if err != nil {
		return nil, fmt.Errorf("compression: %w", err)
	}
	if ep.protocol == clickhouse.Native && (method == clickhouse.CompressionGZIP || method == clickhouse.CompressionDeflate || method == clickhouse.CompressionBrotli) {
		return nil, fmt.Errorf("compression %s: the native protocol takes none, lz4 or zstd", c.Compression)
	}
	opt := &clickhouse.Options{
		Protocol: ep.protocol,
		Addr:     ep.addr,
		Auth: clickhouse.Auth{
			Database: db,
			Username: c.Username,
			Password: pw.Value(),
		},
		DialTimeout:  c.DialTimeout,
		ReadTimeout:  c.ReadTimeout,
		Compression:  &clickhouse.Compression{Method: method},
		HttpUrlPath:  ep.path,
		MaxOpenConns: 8,
		MaxIdleConns: 4,
		ClientInfo: clickhouse.ClientInfo{Products: []struct {
			Name    string
			Version string
		}{{Name: "crowsnest-sink", Version: "1"}}},
	}
	if ep.tls || c.TLS.Enabled {
		if opt.TLS, err = c.TLS.config(); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	return opt, nil
}

func (t TLSConfig) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
