package webhook

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	valid := func() Config {
		c := NewDefaultConfig()
		c.URL = "https://hooks.example.com/services/T0/B0/token"
		return c
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error; none: valid
	}{
		{"defaults with a url", func(*Config) {}, nil},
		{"url from a file", func(c *Config) { c.URL, c.URLFile = "", "/run/secrets/hook" }, nil},
		{"no url", func(c *Config) { c.URL = "" }, []string{"url: must be set"}},
		{"url and url_file", func(c *Config) { c.URLFile = "/x" }, []string{"url_file: set url or url_file"}},
		{"ftp url", func(c *Config) { c.URL = "ftp://x/y" }, []string{`url: scheme must be http or https, got "ftp"`}},
		{"relative url", func(c *Config) { c.URL = "/hook" }, []string{"url: scheme"}},
		{"credentials in the url", func(c *Config) { c.URL = "https://u:p@x/y" }, []string{"url: put credentials in authorization"}},
		{"authorization twice", func(c *Config) { c.Authorization, c.AuthorizationFile = "Bearer x", "/f" }, []string{"authorization_file: set authorization"}},
		{"bad mode", func(c *Config) { c.Mode = "stream" }, []string{`mode: must be record or batch, got "stream"`}},
		{"bad payload", func(c *Config) { c.Payload = "xml" }, []string{`payload: must be json, slack or template, got "xml"`}},
		{"template with json", func(c *Config) { c.Template = "x" }, []string{"template: is used by payload slack or template"}},
		{"slack with default template", func(c *Config) { c.Payload = PayloadSlack }, nil},
		{"slack template does not parse", func(c *Config) { c.Payload, c.Template = PayloadSlack, "{{.Get" }, []string{"template: "}},
		{"slack template calls a missing method", func(c *Config) { c.Payload, c.Template = PayloadSlack, "{{.Nope}}" }, []string{"template: fails on a sample alert"}},
		{"template payload needs a template", func(c *Config) { c.Payload = PayloadTemplate }, []string{"template: must be set"}},
		{"template payload in batch mode", func(c *Config) { c.Payload, c.Template, c.Mode = PayloadTemplate, "{}", ModeBatch }, []string{"mode: payload template"}},
		{"template payload needs a content type", func(c *Config) { c.Payload, c.Template, c.ContentType = PayloadTemplate, "{}", "" }, []string{"content_type: must be set"}},
		{"bad header name", func(c *Config) { c.Headers = map[string]string{"X Bad": "v"} }, []string{"headers.X Bad: not a valid header name"}},
		{"authorization header", func(c *Config) { c.Headers = map[string]string{"authorization": "Bearer x"} }, []string{"headers.authorization: cannot be set here: use authorization"}},
		{"header injection", func(c *Config) { c.Headers = map[string]string{"X-A": "v\r\nX-B: w"} }, []string{"headers.X-A: value contains a line break"}},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c.pem" }, []string{"tls: cert_file and key_file go together"}},
		{"insecure with a ca", func(c *Config) { c.TLS.InsecureSkipVerify, c.TLS.CAFile = true, "ca.pem" }, []string{"tls.insecure_skip_verify: contradicts ca_file"}},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, []string{"timeout: must be positive"}},
		{"no concurrency", func(c *Config) { c.MaxConcurrentRequests = 0 }, []string{"max_concurrent_requests: must be 1 to 256"}},
		{"negative retry after", func(c *Config) { c.MaxRetryAfter = -time.Second }, []string{"max_retry_after: must not be negative"}},
		{"every problem at once", func(c *Config) { c.URL, c.Mode, c.Timeout = "", "x", 0 }, []string{"url:", "mode:", "timeout:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted it, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "token") {
				t.Errorf("error quotes the url: %v", err)
			}
		})
	}
}

func TestNewResolvesFiles(t *testing.T) {
	c := NewDefaultConfig()
	c.URLFile = t.TempDir() + "/missing"
	if _, err := New(c, sinkSettings()); err == nil || !strings.Contains(err.Error(), "url_file") {
		t.Errorf("missing url_file: %v", err)
	}
	c = NewDefaultConfig()
	c.URL = "http://127.0.0.1:1/hook"
	c.TLS.CAFile = t.TempDir() + "/missing.pem"
	if _, err := New(c, sinkSettings()); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("missing ca_file: %v", err)
	}
}
