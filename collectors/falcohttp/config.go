package falcohttp

import (
	"errors"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/ingress"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the section sits under in a collector's config.
const ConfigKey = "falco_http"

// Config is what a user writes about the Falco receiver.
type Config struct {
	// Server is the listener: listen, tls, bearer_token_file,
	// allow_insecure_loopback, max_body_bytes, request_timeout,
	// max_in_flight_requests, retry_after.
	Server ingress.Config `yaml:",inline"`
	// Path is the URL path alerts are posted to; "/" takes every path.
	Path string `yaml:"path"`
}

// NewDefaultConfig listens on 127.0.0.1:2801 (Falco's customary
// http_output port), any path, 4 MiB bodies. Plain HTTP there still needs
// allow_insecure_loopback: true, or give a certificate.
func NewDefaultConfig() Config {
	s := ingress.NewDefaultConfig("127.0.0.1:2801")
	s.MaxBodyBytes = 4 * config.MiB
	return Config{Server: s, Path: "/"}
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	errs := []error{c.Server.Validate()}
	if c.Path == "" || c.Path[0] != '/' {
		errs = append(errs, config.FieldError("path", "must start with '/', got %q", c.Path))
	}
	return errors.Join(errs...)
}
