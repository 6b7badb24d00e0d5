package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/registry"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
	"github.com/crowsnest-siem/crowsnest/sinks/webhook"
)

// The webhook as the sink binary runs it: the registry's block (alerts only,
// enabled with a URL and a Slack payload), its factory, a Runner on the
// embedded JetStream. Events are not forwarded; every alert reaches the
// endpoint as a Slack message; one the endpoint refuses (400) is in the
// dead-letter stream; one it first answers 503 to comes later.
func TestEndToEndThroughRunner(t *testing.T) {
	var (
		mu    sync.Mutex
		texts = map[string]int{} // alert id → messages received
		flaky = map[string]bool{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct{ Text string }
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, "not slack", http.StatusBadRequest)
			return
		}
		id := m.Text[strings.LastIndex(m.Text, " ")+1:]
		mu.Lock()
		defer mu.Unlock()
		switch {
		case id == "e2e-a7":
			http.Error(w, "channel_is_archived", http.StatusBadRequest)
			return
		case id == "e2e-a3" && !flaky[id]:
			flaky[id] = true
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		texts[id]++
	}))
	t.Cleanup(srv.Close)

	cfg := registry.NewDefaultConfig()
	cfg.Webhook.Enabled = true
	cfg.Webhook.Sink.URL = config.Secret("http://" + srv.Listener.Addr().String() + "/services/T0/B0/xyzzy-token")
	cfg.Webhook.Sink.Payload = webhook.PayloadSlack
	cfg.Webhook.Runner.FlushInterval = 20 * time.Millisecond
	cfg.Webhook.Runner.Retry = sinktest.RunnerConfig().Retry
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var block registry.Configured
	for _, c := range cfg.Configured() {
		if c.Name == webhook.Type {
			block = c
		}
	}
	if block.Factory.Create == nil {
		t.Fatal("no webhook in the configured sinks")
	}

	env := sinktest.NewEnv(t)
	msgs := append(sinktest.Events("e2e", 30), sinktest.Alerts("e2e", 10)...)
	sinktest.Publish(t, env.JS, msgs)

	set := sinktest.Settings(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := block.Factory.Create(ctx, block.Config, set)
	if err != nil {
		t.Fatal(err)
	}
	r, err := sink.New(env.JS, block.Name, s, block.Runner, set)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	// Only the alerts consumer exists: wait for it to settle.
	deadline := time.Now().Add(20 * time.Second)
	for {
		info := env.ConsumerInfo(t, webhook.Type, sink.KindAlerts)
		if info != nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts not settled: %+v", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if info := env.ConsumerInfo(t, webhook.Type, sink.KindEvents); info != nil {
		t.Error("the webhook consumes the events stream by default")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 10 {
		id := "e2e-a" + string(rune('0'+i))
		want := 1
		if id == "e2e-a7" {
			want = 0
		}
		if texts[id] != want {
			t.Errorf("alert %s posted %d times, want %d", id, texts[id], want)
		}
	}
	if !flaky["e2e-a3"] {
		t.Error("the 503 was never met")
	}
	dl := env.DeadLetters(t)
	ids := make([]string, len(dl))
	for i, m := range dl {
		ids[i] = m.Header.Get(headers.OriginalMsgID)
		if !strings.Contains(m.Header.Get(headers.Error), "400") || strings.Contains(m.Header.Get(headers.Error), "xyzzy") {
			t.Errorf("dead letter error header = %q", m.Header.Get(headers.Error))
		}
	}
	if !slices.Equal(ids, []string{"e2e-a7"}) {
		t.Errorf("dead letters %v, want [e2e-a7]", ids)
	}
}
