package jsonlines

import (
	"errors"
	"strings"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/filetail"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/ingress"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// ConfigKey is the key the section sits under in a collector's config.
const ConfigKey = "json_lines"

// Config is what a user writes about a JSON lines source.
type Config struct {
	// Source is the raw stream the records go to: json (generic) or a
	// source whose mapper reads this format (tetragon, falco, k8s_audit).
	Source string `yaml:"source"`
	// IDField is the gjson path of each record's natural id; empty: an id
	// from the content.
	IDField string `yaml:"id_field"`
	// Files follows files (when files.paths is set).
	Files filetail.Config `yaml:"files"`
	// Stdin reads standard input until it ends.
	Stdin bool `yaml:"stdin"`
	// HTTP receives POSTed lines.
	HTTP HTTPConfig `yaml:"http"`
}

// HTTPConfig is the HTTP receiver.
type HTTPConfig struct {
	Enabled bool           `yaml:"enabled"`
	Server  ingress.Config `yaml:",inline"`
	// Path is the URL path records are posted to.
	Path string `yaml:"path"`
}

// NewDefaultConfig sends to the json stream with content ids; no input is
// on until configured.
func NewDefaultConfig() Config {
	fc := filetail.NewDefaultConfig()
	fc.DataDir = ".data/collectors/json_lines"
	return Config{
		Source: topology.SourceJSON,
		Files:  fc,
		HTTP:   HTTPConfig{Server: ingress.NewDefaultConfig("127.0.0.1:9880"), Path: "/"},
	}
}

// Validate reports every invalid field, joined, each naming its key.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Source == topology.SourceCollector:
		// Gap records vouch for the collector's own losses; a JSON line that
		// could claim to be one would let any input forge or hide gaps.
		errs = append(errs, config.FieldError("source", "%q is reserved for the collectors' own gap records", c.Source))
	case !topology.ValidSource(c.Source):
		errs = append(errs, config.FieldError("source", "must be one of %s, got %q", strings.Join(topology.Sources(), ", "), c.Source))
	}
	if strings.ContainsAny(c.IDField, "*?|@#") {
		errs = append(errs, config.FieldError("id_field", "must be a plain gjson path to one value, got %q", c.IDField))
	}
	if len(c.Files.Paths) > 0 {
		if err := c.Files.Validate(); err != nil {
			errs = append(errs, &config.ValidationError{Path: "files", Err: err})
		}
	}
	if c.HTTP.Enabled {
		if err := c.HTTP.Server.Validate(); err != nil {
			errs = append(errs, &config.ValidationError{Path: "http", Err: err})
		}
		if c.HTTP.Path == "" || c.HTTP.Path[0] != '/' {
			errs = append(errs, config.FieldError("http.path", "must start with '/', got %q", c.HTTP.Path))
		}
	}
	if len(c.Files.Paths) == 0 && !c.Stdin && !c.HTTP.Enabled {
		errs = append(errs, errors.New("no input: set files.paths, stdin: true or http.enabled: true"))
	}
	return errors.Join(errs...)
}
