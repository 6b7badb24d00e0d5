package terminal

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// syncBuffer is an io.Writer safe for the sink's two writers (batches and
// the status line) and the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// termStore is the terminal's "store": its output.
type termStore struct{ out syncBuffer }

func (s *termStore) Open(tb testing.TB) sink.Sink {
	cfg := NewDefaultConfig()
	cfg.ShowEvents = true // so every record leaves a line with its id
	cfg.StatusInterval = 100 * time.Millisecond
	t, err := New(cfg, &s.out, sinktest.Settings(tb))
	if err != nil {
		tb.Fatalf("open terminal sink: %v", err)
	}
	return t
}

func (s *termStore) Stored(tb testing.TB) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(s.out.String()))
	for sc.Scan() {
		if _, id, ok := strings.Cut(sc.Text(), "  id="); ok {
			out[id]++
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		Name:        "terminal",
		NewStore:    func(testing.TB) sinktest.Store { return &termStore{} },
		ExactlyOnce: false, // a terminal cannot take a printed line back
		Reject:      []byte("not json"),
	})
}

func newSink(t *testing.T, cfg Config) (*Sink, *syncBuffer) {
	t.Helper()
	var out syncBuffer
	cfg.StatusInterval = time.Hour // tests print the status themselves
	s, err := New(cfg, &out, sink.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, &out
}

func alert(id string, mutate func(*schemas.Alert)) sink.Record {
	a := schemas.Alert{
		Timestamp: time.Date(2026, 11, 26, 10, 15, 2, 0, time.UTC),
		Event:     schemas.EventFields{ID: id, Kind: "alert"},
		Crowsnest: schemas.Crowsnest{Alert: schemas.CrowsnestAlert{
			EventIDs: []string{"e1", "e2"}, Entity: "pod:payments/api-7f9c"}},
		Orchestrator: schemas.Orchestrator{Namespace: "payments",
			Resource: schemas.OrchestratorResource{Type: "pods", Name: "api-7f9c"}},
		User: schemas.User{Name: "alice@example.com"},
		Rule: schemas.Rule{Name: "Exec into pod", Level: "high"},
	}
	if mutate != nil {
		mutate(&a)
	}
	return sink.Record{Kind: sink.KindAlerts, ID: id, Data: a.AppendJSON(nil), Seq: 1, Delivered: 1}
}

func TestAlertLine(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*schemas.Alert)
		want   string
	}{
		{"full", nil,
			"2026-11-26T10:15:02Z HIGH      Exec into pod  payments/api-7f9c  user=alice@example.com  entity=pod:payments/api-7f9c  events=e1,e2  id=a1\n"},
		{"many events", func(a *schemas.Alert) { a.Crowsnest.Alert.EventIDs = []string{"e1", "e2", "e3", "e4", "e5"} },
			"2026-11-26T10:15:02Z HIGH      Exec into pod  payments/api-7f9c  user=alice@example.com  entity=pod:payments/api-7f9c  events=e1,e2,e3,+2  id=a1\n"},
		{"container, no pod", func(a *schemas.Alert) {
			a.Orchestrator = schemas.Orchestrator{}
			a.Container.Name = "nginx"
			a.Crowsnest.Alert = schemas.CrowsnestAlert{}
			a.User = schemas.User{}
			a.Rule.Level = "critical"
		}, "2026-11-26T10:15:02Z CRITICAL  Exec into pod  nginx  id=a1\n"},
		{"hostile values", func(a *schemas.Alert) {
			a.User.Name = "mallory\x1b[2J\x1b]0;pwned\x07"
			a.Rule.Name = "Shell\u202e"
			a.Crowsnest.Alert = schemas.CrowsnestAlert{}
		}, "2026-11-26T10:15:02Z HIGH      Shell\ufffd  payments/api-7f9c  user=mallory\ufffd[2J\ufffd]0;pwned\ufffd  id=a1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, out := newSink(t, NewDefaultConfig())
			if err := s.WriteBatch(context.Background(), []sink.Record{alert("a1", tt.mutate)}); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("line:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestColor(t *testing.T) {
	for _, mode := range []string{ColorAuto, ColorNever, ColorAlways} {
		t.Run(mode, func(t *testing.T) {
			cfg := NewDefaultConfig()
			cfg.Color = mode
			s, out := newSink(t, cfg)
			if err := s.WriteBatch(context.Background(), []sink.Record{alert("a1", nil)}); err != nil {
				t.Fatal(err)
			}
			// A buffer is not a terminal: auto means no colour.
			hasANSI := strings.Contains(out.String(), "\x1b[")
			if hasANSI != (mode == ColorAlways) {
				t.Errorf("color %s: ANSI in output = %v: %q", mode, hasANSI, out.String())
			}
		})
	}
}

func TestStatusLine(t *testing.T) {
	s, out := newSink(t, NewDefaultConfig())
	clock := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	s.lastTick = clock
	batch := make([]sink.Record, 2000)
	for i := range batch {
		batch[i] = sink.Record{Kind: sink.KindEvents, Data: []byte("{}")}
	}
	for range 6 {
		if err := s.WriteBatch(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WriteBatch(context.Background(), []sink.Record{alert("a1", nil)}); err != nil {
		t.Fatal(err)
	}
	s.ObserveConsumer(sink.ConsumerStatus{Kind: sink.KindEvents, NumPending: 1500})
	s.ObserveConsumer(sink.ConsumerStatus{Kind: sink.KindAlerts, NumPending: 2})
	clock = clock.Add(5 * time.Second)
	if err := s.printStatus(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := "10:15:05Z  events 12,000 (+2400/s)  alerts 1  lag 1,502"
	if got := lines[len(lines)-1]; got != want {
		t.Errorf("status:\n got %q\nwant %q", got, want)
	}
}

func TestRejects(t *testing.T) {
	s, _ := newSink(t, NewDefaultConfig())
	batch := []sink.Record{
		alert("a1", nil),
		{Kind: sink.KindAlerts, ID: "bad", Data: []byte("{")},
		{Kind: sink.KindEvents, ID: "ev", Data: []byte("not json, not shown, only counted")},
	}
	err := s.WriteBatch(context.Background(), batch)
	be, ok := err.(*sink.BatchError)
	if !ok || be.Len() != 1 || be.Items()[0].Index != 1 || !sink.IsPermanent(be.Items()[0].Err) {
		t.Fatalf("WriteBatch = %v, want record 1 failed permanently", err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := NewDefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Color = "sometimes"
	c.StatusInterval = 0
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "color") || !strings.Contains(err.Error(), "status_interval") {
		t.Fatalf("Validate = %v, want both fields named", err)
	}
}

func TestCloseTwice(t *testing.T) {
	s, out := newSink(t, NewDefaultConfig())
	for range 2 {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(out.String(), "events 0"); n != 1 {
		t.Errorf("final status printed %d times, want once", n)
	}
}
