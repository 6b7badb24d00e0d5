package detect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/detect"
	"github.com/crowsnest-siem/crowsnest/processor/detect/kvstate"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// killedProcessor is a real engine in a processor that dies on its nth
// event: the event is detected (its window written to the state bucket),
// then the process stops before the input is acked — its connection closed,
// nothing flushed, nothing nacked. Only the death is staged; the engine,
// the bucket and the server are real.
type killedProcessor struct {
	eng    *detect.Engine
	n      int
	calls  atomic.Int32
	killed chan struct{}
	gone   chan struct{}
}

func (k *killedProcessor) Process(ctx context.Context, ev *schemas.Event, emit func(*schemas.Alert) error) error {
	switch c := int(k.calls.Add(1)); {
	case c < k.n:
		return k.eng.Process(ctx, ev, emit)
	case c == k.n:
		if err := k.eng.Process(ctx, ev, emit); err != nil {
			return err
		}
		close(k.killed)
	}
	<-k.gone // a dead process does nothing more
	return fmt.Errorf("processor killed")
}

func forbidden(auditID string, sec int) []byte {
	ts := fmt.Sprintf("2026-11-26T10:00:%02d.000000Z", sec)
	return fmt.Appendf(nil, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":"ResponseComplete",`+
		`"requestURI":"/api/v1/namespaces/kube-system/secrets","verb":"list","user":{"username":"mallory@example.com"},"sourceIPs":["198.51.100.77"],`+
		`"objectRef":{"resource":"secrets","namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"code":403},`+
		`"requestReceivedTimestamp":%q,"stageTimestamp":%q}`, auditID, ts, ts)
}

// TestPipelineKilledMidWindow: a processor killed mid-window (the built-in
// burst correlation, 3 of 5 denials seen, the third processed but never
// acked) is replaced by a new processor on the same server; the input is
// redelivered with the last two and the correlation fires exactly once, on
// all five events.
func TestPipelineKilledMidWindow(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := t.Context()
	tcfg := topology.NewDefaultConfig()
	tcfg.Consumers.Processor.AckWait = 2 * time.Second
	tcfg.Consumers.Processor.Backoff = nil
	tcfg.Consumers.Processor.MaxDeliver = -1
	if err := topology.Ensure(ctx, js, tcfg); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = fmt.Sprintf("6b6b6b6b-0000-4000-8000-00000000000%d", i)
		m := nats.NewMsg("crowsnest.raw.k8s_audit.node-1." + topology.KeyToken("ns/kube-system"))
		m.Data = forbidden(ids[i], i*5)
		m.Header.Set(headers.MsgID, "raw-"+ids[i])
		m.Header.Set(headers.Node, "node-1")
		m.Header.Set(headers.Observed, headers.FormatTime(time.Now()))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	cfg := pipeline.NewDefaultConfig()
	cfg.RetryDelay = 100 * time.Millisecond
	newPipeline := func(js jetstream.JetStream, det pipeline.Detector) *pipeline.Pipeline {
		t.Helper()
		reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
		if err != nil {
			t.Fatal(err)
		}
		norm, err := normalize.New(cfg.Normalize, reg)
		if err != nil {
			t.Fatal(err)
		}
		p, err := pipeline.New(js, norm, deadletter.NewPublisher(js), cfg, pipeline.Settings{
			Sources: []string{"k8s_audit"}, Consumer: tcfg.Consumers.Processor, Detector: det,
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// The first processor, on its own connection, dies on the third denial.
	ncA, jsA := natstest.Connect(t, srv)
	rules, _, err := detect.Load(detect.LoadOptions{}, detect.BuiltinSource())
	if err != nil {
		t.Fatal(err)
	}
	victim := &killedProcessor{eng: detect.NewEngine(rules, cfg.Detect, detect.WithStateStore(kvstate.New(jsA))), n: 3,
		killed: make(chan struct{}), gone: make(chan struct{})}
	ctxA, cancelA := context.WithCancel(ctx)
	doneA := make(chan struct{})
	go func() {
		defer close(doneA)
		_ = newPipeline(jsA, victim).Run(ctxA) // a killed process reports nothing
	}()
	select {
	case <-victim.killed:
	case <-time.After(20 * time.Second):
		t.Fatal("the first processor never reached its third event")
	}
	ncA.Close()
	close(victim.gone)
	cancelA()
	<-doneA

	// Its successor: a processor as crowsnest-processor builds it.
	ctxB, cancelB := context.WithCancel(ctx)
	doneB := make(chan error, 1)
	go func() { doneB <- newPipeline(js, nil).Run(ctxB) }()
	deadline := time.Now().Add(30 * time.Second)
	for correlationAlerts(t, js) == nil || rawLeft(t, js) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no correlation alert, or raw records left (%d)", rawLeft(t, js))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a second alert would show by now
	cancelB()
	if err := <-doneB; err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := correlationAlerts(t, js)
	if len(got) != 1 {
		t.Fatalf("%d correlation alerts, want exactly 1", len(got))
	}
	for _, id := range ids {
		if !slices.ContainsFunc(got[0], func(e string) bool { return len(e) >= len(id) && e[:len(id)] == id }) {
			t.Fatalf("correlation alert on %v, missing the event of audit %s", got[0], id)
		}
	}
}

func rawLeft(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), "CROWSNEST_RAW_K8S_AUDIT")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// correlationAlerts returns the contributing event ids of each correlation
// alert in the alerts stream.
func correlationAlerts(t *testing.T, js jetstream.JetStream) [][]string {
	t.Helper()
	s, err := js.Stream(t.Context(), topology.AlertsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		var a struct {
			Crowsnest struct {
				Alert struct {
					Correlation string
					EventIDs    []string `json:"event_ids"`
				} `json:"alert"`
			} `json:"crowsnest"`
		}
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatalf("alert %d: %v", seq, err)
		}
		if a.Crowsnest.Alert.Correlation != "" {
			out = append(out, a.Crowsnest.Alert.EventIDs)
		}
	}
	return out
}
