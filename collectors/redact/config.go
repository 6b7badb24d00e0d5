package redact

import (
	"errors"
	"strconv"
	"strings"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the section sits under in a collector's config.
const ConfigKey = "redact"

// Config is what a user writes about redaction.
type Config struct {
	// KubernetesSecrets redacts Secret and ConfigMap contents and service
	// account tokens in Kubernetes audit events.
	KubernetesSecrets bool `yaml:"kubernetes_secrets"`
	// AuthorizationTokens redacts bearer tokens and Basic credentials in
	// any record of any source.
	AuthorizationTokens bool `yaml:"authorization_tokens"`
	// Paths are further values to redact.
	Paths []PathRule `yaml:"paths"`
	// Replacement is what a redacted value becomes (a JSON string).
	Replacement string `yaml:"replacement"`
}

// PathRule redacts one path in the records of one source.
type PathRule struct {
	// Source is a source name (k8s_audit, falco, ...); empty: every source.
	Source string `yaml:"source"`
	// Path is a gjson/sjson path ("requestObject.spec.password",
	// "items.#.env"); '#' stands for every element of an array.
	Path string `yaml:"path"`
}

// NewDefaultConfig turns both built-in rule sets on.
func NewDefaultConfig() Config {
	return Config{KubernetesSecrets: true, AuthorizationTokens: true, Replacement: "[REDACTED]"}
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Replacement == "" || strings.ContainsFunc(c.Replacement, func(r rune) bool { return r == '"' || r == '\\' || r < ' ' }) {
		errs = append(errs, config.FieldError("replacement", "must be non-empty, without quotes, backslashes or control characters (it is written inside JSON strings), got %q", c.Replacement))
	}
	for i, p := range c.Paths {
		key := "paths[" + strconv.Itoa(i) + "]"
		if p.Source != "" && !topology.ValidSource(p.Source) {
			errs = append(errs, config.FieldError(key+".source", "unknown source %q (one of %s)", p.Source, strings.Join(topology.Sources(), ", ")))
		}
		if p.Path == "" || strings.HasPrefix(p.Path, ".") || strings.HasSuffix(p.Path, ".") || strings.Contains(p.Path, "..") {
			errs = append(errs, config.FieldError(key+".path", "must be a dotted path such as requestObject.spec.password, got %q", p.Path))
		}
		if strings.ContainsAny(p.Path, "*?|@") && !strings.Contains(p.Path, `\`) {
			errs = append(errs, config.FieldError(key+".path", "wildcards, queries and modifiers cannot be written back; use '#' for every element of an array: %q", p.Path))
		}
	}
	return errors.Join(errs...)
}
