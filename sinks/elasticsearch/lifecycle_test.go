package elasticsearch

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// With lifecycle.ilm_policy set, a server without ILM (the development
// server) refuses to start writing with an error that says why; a server
// with ILM gets the policy and a template that names it.
func TestILMPolicyOnServer(t *testing.T) {
	base := serverURL(t)
	ns := testNamespace(t, base)
	cfg := testConfig(base, ns)
	cfg.Lifecycle.ILMPolicy = "crowsnest-test"
	s := openSink(t, cfg)
	err := s.WriteBatch(context.Background(), []sink.Record{{Kind: sink.KindEvents, ID: "ilm-1", Data: sinktest.EventDoc("ilm-1")}})

	status, _ := esRequest(t, base, http.MethodGet, "/_ilm/status", nil)
	if status != http.StatusOK {
		if err == nil || !strings.Contains(err.Error(), "no ILM") {
			t.Fatalf("WriteBatch = %v, want an error saying the server has no ILM", err)
		}
		if sink.IsPermanent(err) {
			t.Error("a missing ILM dead-letters the records; it must be retryable until the config is fixed")
		}
		return
	}
	if err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	if status, body := esRequest(t, base, http.MethodGet, "/_ilm/policy/crowsnest-test", nil); status != http.StatusOK {
		t.Errorf("policy not installed: %d %s", status, body)
	}
	_, body := esRequest(t, base, http.MethodGet, "/_index_template/logs-crowsnest.events", nil)
	if got := gjson.GetBytes(body, `index_templates.0.index_template.template.settings.index.lifecycle.name`).String(); got != "crowsnest-test" {
		t.Errorf("index template names policy %q", got)
	}
}

// A server that cannot be reached fails the write as a whole, retryably,
// and Close is safe twice.
func TestUnreachableServer(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Addresses = []string{"http://127.0.0.1:1"}
	cfg.DialTimeout = 200 * time.Millisecond
	s, err := New(cfg, sink.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.WriteBatch(context.Background(), []sink.Record{{Kind: sink.KindEvents, ID: "x", Data: []byte(`{}`)}})
	var be *sink.BatchError
	if err == nil || sink.IsPermanent(err) || errors.As(err, &be) {
		t.Fatalf("WriteBatch = %v, want a plain retryable error", err)
	}
	for range 2 {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}
