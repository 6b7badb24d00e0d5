package k8swebhook

import (
	"errors"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/ingress"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the section sits under in a collector's config.
const ConfigKey = "k8s_audit_webhook"

// Config is what a user writes about the webhook backend.
type Config struct {
	// Server is the listener: listen, tls, bearer_token_file,
	// allow_insecure_loopback, max_body_bytes, request_timeout,
	// max_in_flight_requests, retry_after.
	Server ingress.Config `yaml:",inline"`
	// Path is the URL path the API server posts to; any other is 404.
	Path string `yaml:"path"`
}

// NewDefaultConfig listens on :9443 at /audit with TLS 1.2+. The
// certificate and the client authentication are the user's to give.
func NewDefaultConfig() Config {
	return Config{Server: ingress.NewDefaultConfig(":9443"), Path: "/audit"}
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	errs := []error{c.Server.Validate()}
	if !c.Server.HasAuth() && !c.Server.Insecure() {
		errs = append(errs, config.FieldError("tls.client_ca_file", "the API server must authenticate: set tls.client_ca_file or bearer_token_file"))
	}
	if c.Path == "" || c.Path[0] != '/' {
		errs = append(errs, config.FieldError("path", "must start with '/', got %q", c.Path))
	}
	return errors.Join(errs...)
}
