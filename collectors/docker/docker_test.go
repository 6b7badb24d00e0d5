package docker

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// corpus holds recorded Engine API /events responses (docker/cli and moby
// test data and API docs), shared beside the repository.
const corpus = "../../../shared/corpora/docker-engine-events"

// recorded returns the recorded JSON events, or skips.
func recorded(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, f := range []string{"moby/events_api_doc_examples.extracted.jsonl", "docker-cli/cli/command/system/testdata/docker-events-json.golden"} {
		b, err := os.ReadFile(filepath.Join(corpus, f))
		if err != nil {
			t.Skipf("recorded docker events not found (%v): these tests need ../shared/corpora", err)
		}
		for line := range bytes.Lines(b) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				out = append(out, line)
			}
		}
	}
	return out
}

func TestEventTimesGolden(t *testing.T) {
	own, err := os.ReadFile(filepath.Join("testdata", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for line := range bytes.Lines(own) {
		fmt.Fprintf(&got, "%d %s\n", eventNanos(bytes.TrimSpace(line)), sinceParam(eventNanos(bytes.TrimSpace(line))))
	}
	path := filepath.Join("testdata", "events.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got.String() != string(want) {
		t.Errorf("differs from %s:\n%s", path, got.String())
	}
}

func FuzzEventNanos(f *testing.F) {
	own, _ := os.ReadFile(filepath.Join("testdata", "events.jsonl"))
	for line := range bytes.Lines(own) {
		f.Add(bytes.TrimSpace(line))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n := eventNanos(raw)
		if n < 0 {
			return
		}
		_ = sinceParam(n)
	})
}

// fakeDockerEngine serves recorded /events responses on a unix socket, in
// time order from the requested since. Docker cannot run in this sandbox,
// so this fake stands in for the engine; it also injects the fault a real
// engine produces on restart: the stream cut mid-way.
type fakeDockerEngine struct {
	socket string
	events [][]byte // sorted by time
	cutAt  int      // the first connection ends after this many events

	mu     sync.Mutex
	sinces []string
	conns  int
}

func newFakeDockerEngine(t *testing.T, events [][]byte, cutAt int) *fakeDockerEngine {
	t.Helper()
	sorted := slices.Clone(events)
	sort.SliceStable(sorted, func(i, j int) bool { return eventNanos(sorted[i]) < eventNanos(sorted[j]) })
	f := &fakeDockerEngine{socket: filepath.Join(t.TempDir(), "docker.sock"), events: sorted, cutAt: cutAt}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *fakeDockerEngine) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/events" {
		http.NotFound(w, r)
		return
	}
	since := r.URL.Query().Get("since")
	f.mu.Lock()
	f.sinces = append(f.sinces, since)
	f.conns++
	first := f.conns == 1
	f.mu.Unlock()
	sec, frac, _ := strings.Cut(since, ".")
	s, _ := strconv.ParseInt(sec, 10, 64)
	ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	from := s*1e9 + ns
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	sent := 0
	for _, ev := range f.events {
		if eventNanos(ev) < from {
			continue
		}
		if first && sent == f.cutAt {
			return // the engine restarted: the stream ends mid-way
		}
		w.Write(append(ev, '\n'))
		fl.Flush()
		sent++
	}
	<-r.Context().Done() // a live stream stays open
}

// TestReconnectWithSinceLosesNothing: every recorded event reaches
// JetStream exactly once although the stream is cut half-way, and the
// reconnection asks for events since the last acknowledged one.
func TestReconnectWithSinceLosesNothing(t *testing.T) {
	events := recorded(t)
	b := bustest.Start(t)
	fake := newFakeDockerEngine(t, events, len(events)/2)
	cfg := NewDefaultConfig()
	cfg.Socket = fake.socket
	cfg.DataDir = t.TempDir()
	cfg.Lookback = 100 * 365 * 24 * time.Hour // from the start of the recording
	cfg.RetryInitial = 10 * time.Millisecond
	src, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	b.WaitMessages(t, bustest.StreamDocker, len(events), 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	ms := b.Messages(t, bustest.StreamDocker)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	if len(ms) != len(events) {
		t.Fatalf("stream holds %d events, want the %d recorded, each once", len(ms), len(events))
	}
	got := map[string]bool{}
	for _, m := range ms {
		got[string(m.Data)] = true
	}
	for _, ev := range events {
		if !got[string(ev)] {
			t.Errorf("missing %s", ev)
		}
	}
	fake.mu.Lock()
	sinces := slices.Clone(fake.sinces)
	fake.mu.Unlock()
	if len(sinces) < 2 {
		t.Fatalf("no reconnection: %v", sinces)
	}
	cut := fake.events[fake.cutAt-1]
	if want := sinceParam(eventNanos(cut)); sinces[1] != want {
		t.Errorf("reconnected with since=%s, want %s (the last acknowledged event)", sinces[1], want)
	}

	// A restart resumes from the checkpoint, not from the lookback.
	src2, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig())})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_ = src2.Run(ctx2)
	fake.mu.Lock()
	last := fake.sinces[len(fake.sinces)-1]
	fake.mu.Unlock()
	if want := sinceParam(eventNanos(fake.events[len(fake.events)-1])); last != want {
		t.Errorf("restart asked since=%s, want %s", last, want)
	}
	if n := len(b.Messages(t, bustest.StreamDocker)); n != len(events) {
		t.Errorf("after restart the stream holds %d, want %d", n, len(events))
	}
}

func TestEngineDownIsRetried(t *testing.T) {
	b := bustest.Start(t)
	cfg := NewDefaultConfig()
	cfg.Socket = filepath.Join(t.TempDir(), "absent.sock")
	cfg.DataDir = t.TempDir()
	cfg.RetryInitial = 5 * time.Millisecond
	cfg.RetryMax = 20 * time.Millisecond
	src, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := src.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want it to keep retrying until ctx ends", err)
	}
}
