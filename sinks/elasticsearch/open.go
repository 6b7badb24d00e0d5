package elasticsearch

import (
	"fmt"

	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Open returns a client for cfg's cluster built as the sink builds its own
// (addresses, credentials, TLS trust, timeouts, no client-side retries), for
// tools that read what the sink wrote, such as `crowsnest query`. It
// performs no request.
func Open(cfg Config) (*es.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	c, _, err := newClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	return c, nil
}

// DataStreamName returns the data stream the sink writes records of kind k
// to under namespace: logs-crowsnest.events-<namespace>, its prefix taken
// from the generated index template.
func DataStreamName(k sink.Kind, namespace string) (string, error) {
	templates, err := loadTemplates()
	if err != nil {
		return "", fmt.Errorf("elasticsearch: %w", err)
	}
	t := templates[k]
	if t == nil {
		return "", fmt.Errorf("elasticsearch: no template for %s", k)
	}
	return dataStream(t.prefix, namespace), nil
}
