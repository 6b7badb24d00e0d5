package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Modes: how records map to requests.
const (
	// ModeRecord sends one POST per record.
	ModeRecord = "record"
	// ModeBatch sends one POST per batch the runner hands over.
	ModeBatch = "batch"
)

// Payloads: what a request body is.
const (
	// PayloadJSON is the record exactly as published (an alert or event
	// document); in batch mode, a JSON array of them.
	PayloadJSON = "json"
	// PayloadSlack is {"text": ...} with the text rendered from Template
	// (DefaultSlackTemplate when empty): Slack, Mattermost, Rocket.Chat and
	// Microsoft Teams workflows accept it. In batch mode the records' texts
	// are joined by newlines into one message.
	PayloadSlack = "slack"
	// PayloadTemplate is a body rendered from Template as is, sent with
	// ContentType: for ticketing APIs with their own shape. Record mode only.
	PayloadTemplate = "template"
)

// Config is the webhook sink's config block.
type Config struct {
	// URL is the endpoint (http or https). It is a secret: chat webhooks
	// carry their token in the path, so it is never logged (logs name the
	// scheme and host only). url_file reads it from a file instead.
	URL     config.Secret `yaml:"url"`
	URLFile string        `yaml:"url_file"`
	// Mode is record (one POST per record) or batch (one JSON array per
	// batch).
	Mode string `yaml:"mode"`
	// Payload is json, slack or template.
	Payload string `yaml:"payload"`
	// Template is a Go text/template: the message text for payload slack,
	// the whole body for payload template. See the package documentation
	// for what it can use.
	Template string `yaml:"template"`
	// ContentType is the Content-Type of a template body.
	ContentType string `yaml:"content_type"`
	// Headers are added to every request. Credentials do not go here (they
	// would be logged with the config): use authorization.
	Headers map[string]string `yaml:"headers"`
	// Authorization is the Authorization header's value ("Bearer xyz",
	// "Basic ..."), or authorization_file's content.
	Authorization     config.Secret `yaml:"authorization"`
	AuthorizationFile string        `yaml:"authorization_file"`
	TLS               TLSConfig     `yaml:"tls"`
	// Timeout bounds one request, response included.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConcurrentRequests bounds the requests in flight at once in record
	// mode (1 sends in order).
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// MaxRetryAfter caps how long a Retry-After header (on 429, 503...)
	// holds requests back.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// TLSConfig is how https endpoints are verified, and the client certificate
// offered to them.
type TLSConfig struct {
	// CAFile is a PEM file of CA certificates to trust instead of the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify accepts any server certificate. Only for tests
	// against a throwaway endpoint: anyone on the path can read the alerts.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// NewDefaultConfig returns the defaults: no URL (the sink is off until given
// one), one JSON POST per record, 10 s per request, 4 in flight, Retry-After
// honoured up to 5 minutes.
func NewDefaultConfig() Config {
	return Config{
		Mode:                  ModeRecord,
		Payload:               PayloadJSON,
		ContentType:           "application/json",
		Timeout:               10 * time.Second,
		MaxConcurrentRequests: 4,
		MaxRetryAfter:         5 * time.Minute,
	}
}

// headers the sink sets itself; configuring them would be ignored or break
// the request.
var reservedHeaders = map[string]string{
	"Authorization":     "use authorization or authorization_file",
	"Content-Type":      "set by payload (content_type for payload template)",
	"Content-Length":    "set by the client",
	"Host":              "taken from url",
	"Transfer-Encoding": "set by the client",
	"Connection":        "set by the client",
}

// Validate reports every invalid field, joined, with its key path.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, sink.NewFieldError(path, format, args...))
	}
	switch {
	case c.URL.IsSet() && c.URLFile != "":
		bad("url_file", "set url or url_file, not both")
	case c.URL.IsSet():
		if err := checkURL(c.URL.Value()); err != nil {
			bad("url", "%v", err)
		}
	case c.URLFile == "":
		bad("url", "must be set (or url_file)")
	}
	if c.Authorization.IsSet() && c.AuthorizationFile != "" {
		bad("authorization_file", "set authorization or authorization_file, not both")
	}
	switch c.Mode {
	case ModeRecord, ModeBatch:
	default:
		bad("mode", "must be %s or %s, got %q", ModeRecord, ModeBatch, c.Mode)
	}
	switch c.Payload {
	case PayloadJSON:
		if c.Template != "" {
			bad("template", "is used by payload slack or template, not json")
		}
	case PayloadSlack:
		if _, err := newRenderer(c.Payload, c.Template); err != nil {
			bad("template", "%v", err)
		}
	case PayloadTemplate:
		if c.Template == "" {
			bad("template", "must be set with payload template")
		} else if _, err := newRenderer(c.Payload, c.Template); err != nil {
			bad("template", "%v", err)
		}
		if c.Mode != ModeRecord {
			bad("mode", "payload template renders one record per body: mode must be %s", ModeRecord)
		}
		if c.ContentType == "" {
			bad("content_type", "must be set with payload template")
		}
	default:
		bad("payload", "must be %s, %s or %s, got %q", PayloadJSON, PayloadSlack, PayloadTemplate, c.Payload)
	}
	for name := range c.Headers {
		path := "headers." + name
		if !validHeaderName(name) {
			bad(path, "not a valid header name")
			continue
		}
		if why, ok := reservedHeaders[http.CanonicalHeaderKey(name)]; ok {
			bad(path, "cannot be set here: %s", why)
		}
		if strings.ContainsAny(c.Headers[name], "\r\n\x00") {
			bad(path, "value contains a line break or NUL")
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	if c.TLS.InsecureSkipVerify && c.TLS.CAFile != "" {
		bad("tls.insecure_skip_verify", "contradicts ca_file: pin the CA or skip verification, not both")
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive, got %s", c.Timeout)
	}
	if c.MaxConcurrentRequests < 1 || c.MaxConcurrentRequests > 256 {
		bad("max_concurrent_requests", "must be 1 to 256, got %d", c.MaxConcurrentRequests)
	}
	if c.MaxRetryAfter < 0 {
		bad("max_retry_after", "must not be negative, got %s", c.MaxRetryAfter)
	}
	return errors.Join(errs...)
}

// checkURL accepts absolute http(s) URLs without credentials. Its errors
// never quote the URL: it is a secret.
func checkURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("put credentials in authorization, not in the URL")
	}
	return nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}
