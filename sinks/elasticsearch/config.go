package elasticsearch

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Compression values.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
)

// Config is the Elasticsearch sink's config block.
type Config struct {
	// Addresses are the nodes' base URLs; requests go round-robin over them.
	Addresses []string `yaml:"addresses"`
	// Username and Password authenticate with HTTP basic auth. APIKey (the
	// base64 "id:key" Elasticsearch returns as "encoded") replaces them.
	// Each secret may come from a file instead (password_file, api_key_file).
	Username     string        `yaml:"username"`
	Password     config.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	APIKey       config.Secret `yaml:"api_key"`
	APIKeyFile   string        `yaml:"api_key_file"`
	TLS          TLSConfig     `yaml:"tls"`
	// Namespace is the data stream namespace: documents go to
	// logs-crowsnest.events-<namespace> and logs-crowsnest.alerts-<namespace>.
	Namespace string `yaml:"namespace"`
	// RequestTimeout bounds one HTTP request (a _bulk or a template PUT).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// DialTimeout bounds opening a connection.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxRequestBytes caps one _bulk body; a larger batch is split over
	// several requests (a single document larger than this goes alone).
	MaxRequestBytes topology.ByteSize `yaml:"max_request_bytes"`
	// Compression is none or gzip (request bodies; gzip trades CPU for
	// bandwidth, worth it over a WAN, not on a LAN).
	Compression string `yaml:"compression"`
	// ManageTemplates installs the component and index templates generated
	// from schemas/ before the first write. Turn it off when the sink's user
	// may only write documents and the templates are installed by someone
	// who may manage them.
	ManageTemplates bool            `yaml:"manage_templates"`
	Lifecycle       LifecycleConfig `yaml:"lifecycle"`
}

// TLSConfig pins the server's certificate. Without it the system roots
// verify https addresses.
type TLSConfig struct {
	// CAFile is a PEM file with the CA certificates to trust (the http_ca.crt
	// Elasticsearch generates on first start).
	CAFile string `yaml:"ca_file"`
	// CAFingerprint is the hex SHA-256 fingerprint of the CA certificate (or
	// the server certificate) to trust, as Elasticsearch prints it on first
	// start; colons are allowed.
	CAFingerprint string `yaml:"ca_fingerprint"`
}

// LifecycleConfig is how long data is kept.
type LifecycleConfig struct {
	// Retention is the data stream lifecycle's data_retention ("90d",
	// "720h"): applied through the index templates where the server has the
	// data stream lifecycle (8.14+ with its data-streams module); skipped
	// with a log line where it has not. Empty keeps data forever.
	Retention string `yaml:"retention"`
	// ILMPolicy, when set, manages the data streams with the ILM policy of
	// that name instead (x-pack clusters): the sink installs the policy
	// shipped with crowsnest under that name if none exists, and never
	// overwrites one that does. Start-up fails when the server has no ILM.
	ILMPolicy string `yaml:"ilm_policy"`
}

// NewDefaultConfig returns the defaults: a local unauthenticated node,
// namespace default, 30 s requests, 10 MiB bulk bodies, no compression,
// templates managed, 90 days of retention.
func NewDefaultConfig() Config {
	return Config{
		Addresses:       []string{"http://127.0.0.1:9200"},
		Namespace:       "default",
		RequestTimeout:  30 * time.Second,
		DialTimeout:     5 * time.Second,
		MaxRequestBytes: 10 * topology.MiB,
		Compression:     CompressionNone,
		ManageTemplates: true,
		Lifecycle:       LifecycleConfig{Retention: "90d"},
	}
}

// The rules Elasticsearch and the data stream naming scheme put on a
// namespace: lower case, none of \/*?"<>| ,#:- and at most 100 bytes.
var namespaceRE = regexp.MustCompile(`^[a-z0-9_][a-z0-9_.]{0,99}$`)

// An Elasticsearch time value in whole units.
var retentionRE = regexp.MustCompile(`^[1-9][0-9]*(d|h|m|s)$`)

// ILM policy names follow index naming rules, more or less.
var policyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,254}$`)

// Validate reports every invalid field, joined, with its key path.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, sink.NewFieldError(path, format, args...))
	}
	if len(c.Addresses) == 0 {
		bad("addresses", "must name at least one node URL")
	}
	for i, a := range c.Addresses {
		u, err := url.Parse(a)
		switch {
		case err != nil:
			bad(fmt.Sprintf("addresses[%d]", i), "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad(fmt.Sprintf("addresses[%d]", i), "scheme must be http or https, got %q", a)
		case u.Host == "":
			bad(fmt.Sprintf("addresses[%d]", i), "no host in %q", a)
		case u.User != nil:
			bad(fmt.Sprintf("addresses[%d]", i), "put credentials in username/password or api_key, not in the URL")
		}
	}
	if c.Password.IsSet() && c.PasswordFile != "" {
		bad("password_file", "set password or password_file, not both")
	}
	if c.APIKey.IsSet() && c.APIKeyFile != "" {
		bad("api_key_file", "set api_key or api_key_file, not both")
	}
	hasPassword := c.Password.IsSet() || c.PasswordFile != ""
	hasKey := c.APIKey.IsSet() || c.APIKeyFile != ""
	if hasKey && (c.Username != "" || hasPassword) {
		bad("api_key", "set either api_key or username/password, not both")
	}
	if hasPassword && c.Username == "" {
		bad("username", "must be set with a password")
	}
	if fp := c.TLS.CAFingerprint; fp != "" {
		if b, err := hex.DecodeString(strings.ReplaceAll(fp, ":", "")); err != nil || len(b) != 32 {
			bad("tls.ca_fingerprint", "must be a hex SHA-256 fingerprint (64 hex digits, colons allowed)")
		}
	}
	if !namespaceRE.MatchString(c.Namespace) {
		bad("namespace", "must be 1-100 of a-z 0-9 _ . (no '-': it separates the parts of a data stream name), got %q", c.Namespace)
	}
	if c.RequestTimeout < time.Second {
		bad("request_timeout", "must be at least 1s, got %s", c.RequestTimeout)
	}
	if c.DialTimeout < 100*time.Millisecond {
		bad("dial_timeout", "must be at least 100ms, got %s", c.DialTimeout)
	}
	if c.MaxRequestBytes < 64*topology.KiB || c.MaxRequestBytes > 100*topology.MiB {
		bad("max_request_bytes", "must be between 64KiB and 100MiB (Elasticsearch's http.max_content_length), got %d", int64(c.MaxRequestBytes))
	}
	switch c.Compression {
	case CompressionNone, CompressionGzip:
	default:
		bad("compression", "must be none or gzip, got %q", c.Compression)
	}
	if r := c.Lifecycle.Retention; r != "" && !retentionRE.MatchString(r) {
		bad("lifecycle.retention", "must be a whole number of d, h, m or s (\"90d\"), or empty to keep data forever; got %q", r)
	}
	if p := c.Lifecycle.ILMPolicy; p != "" && !policyRE.MatchString(p) {
		bad("lifecycle.ilm_policy", "must be a lower-case policy name, got %q", p)
	}
	return errors.Join(errs...)
}

// DataStream is the data stream documents of kind k go to under this
// config: <prefix>-<namespace>, the prefix coming from the generated index
// template.
func dataStream(prefix, namespace string) string { return prefix + "-" + namespace }
