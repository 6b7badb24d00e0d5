package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sync"
	"testing"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/registry"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
	"github.com/crowsnest-siem/crowsnest/sinks/webhook"
	"go.yaml.in/yaml/v3"
)

// Every YAML example of docs/webhook.md decodes strictly into the sinks
// config, validates, and, pointed at a real endpoint (files and TLS left
// out: they name the reader's paths), posts an alert as a JSON body.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/webhook.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("docs/webhook.md has no yaml example")
	}
	var (
		mu   sync.Mutex
		body []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		body = b
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	for i, b := range blocks {
		var top struct {
			Sinks yaml.Node `yaml:"sinks"`
		}
		if err := yaml.Unmarshal(b[1], &top); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		node, err := yaml.Marshal(&top.Sinks)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(node))
		dec.KnownFields(true)
		c := registry.NewDefaultConfig()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		if !c.Webhook.Enabled {
			t.Errorf("example %d does not enable the webhook", i+1)
		}
		w := c.Webhook.Sink
		if w.URLFile != "" {
			w.URL, w.URLFile = "https://hooks.example.com/x", ""
		}
		if err := w.Validate(); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		w.URL = config.Secret(srv.URL)
		w.TLS, w.AuthorizationFile = webhook.TLSConfig{}, ""
		s, err := webhook.New(w, sink.Settings{})
		if err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		rec := sink.Record{ID: "a1", Kind: sink.KindAlerts, Data: sinktest.AlertDoc("a1")}
		if err := s.WriteBatch(context.Background(), []sink.Record{rec}); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		mu.Lock()
		if !json.Valid(body) || !bytes.Contains(body, []byte("Exec into pod")) {
			t.Errorf("example %d posted %s", i+1, body)
		}
		mu.Unlock()
	}
}
