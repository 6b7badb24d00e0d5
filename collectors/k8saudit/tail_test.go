package k8saudit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

type env struct {
	js   jetstream.JetStream
	pub  *publish.Publisher
	logs string // directory of the audit logs
	data string // checkpoint dir
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, js, topology.NewDefaultConfig()); err != nil {
		t.Fatal(err)
	}
	pcfg := publish.NewDefaultConfig()
	pcfg.CollectorID = "tail-test"
	pcfg.Node = "node-a"
	pub, err := publish.New(pcfg, publish.Settings{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := pub.Close(ctx); err != nil {
			t.Errorf("close publisher: %v", err)
		}
	})
	return &env{js: js, pub: pub, logs: t.TempDir(), data: t.TempDir()}
}

func (e *env) config(paths ...string) Config {
	cfg := NewDefaultConfig()
	cfg.Paths = paths
	cfg.DataDir = e.data
	cfg.PollInterval = 10 * time.Millisecond
	cfg.RotateWait = 50 * time.Millisecond
	cfg.CheckpointInterval = 0
	return cfg
}

// running is a Tailer running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func (e *env) start(t *testing.T, cfg Config) *running {
	t.Helper()
	tl, err := New(cfg, Settings{Publisher: e.pub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- tl.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func auditLine(id int) string {
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-%04d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods","verb":"list","user":{"username":"dave@example.com"},"responseStatus":{"code":200},"stageTimestamp":"2026-03-10T09:00:01.000000Z"}`+"\n", id)
}

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(auditLine(i))
	}
	return b.String()
}

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("id-%04d-ResponseComplete", i))
	}
	return out
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) stream(t *testing.T, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (e *env) rawIDs(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range e.stream(t, "CROWSNEST_RAW_K8S_AUDIT") {
		out = append(out, m.Header.Get(headers.MsgID))
	}
	slices.Sort(out)
	return out
}

// waitIDs waits until the raw stream holds exactly want (sorted).
func (e *env) waitIDs(t *testing.T, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.rawIDs(t)
		if slices.Equal(got, want) {
			// Stay equal a little: nothing more may arrive.
			time.Sleep(100 * time.Millisecond)
			if got := e.rawIDs(t); !slices.Equal(got, want) {
				t.Fatalf("raw stream went on to %d records after matching the %d expected", len(got), len(want))
			}
			return
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("raw stream holds %d records %v, want %d %v", len(got), head(got), len(want), head(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func TestTailFollowsAppendsAndWaitsForPartialLines(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.logs, "audit.log")
	appendFile(t, path, lines(0, 10))
	e.start(t, e.config(path))
	e.waitIDs(t, ids(0, 10))

	full := auditLine(10)
	appendFile(t, path, full[:40]) // the writer is mid-line
	time.Sleep(100 * time.Millisecond)
	e.waitIDs(t, ids(0, 10))
	appendFile(t, path, full[40:]+lines(11, 15))
	e.waitIDs(t, ids(0, 15))

	for _, m := range e.stream(t, "CROWSNEST_RAW_K8S_AUDIT")[:1] {
		if !bytes.Equal(append(m.Data, '\n'), []byte(auditLine(0))) || !onSubject(m.Subject, "tail-test", "user/dave@example.com") {
			t.Fatalf("stored %q on %s, want the line as written", m.Data, m.Subject)
		}
	}
}

func TestTailRotationRenameAndCreate(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.logs, "audit.log")
	appendFile(t, path, lines(0, 5))
	e.start(t, e.config(path))
	e.waitIDs(t, ids(0, 5))

	rotated := filepath.Join(e.logs, "audit-2026-03-10T09-00-00.000.log")
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	appendFile(t, rotated, lines(5, 8)) // a writer still holding the old file
	appendFile(t, path, lines(8, 12))
	e.waitIDs(t, ids(0, 12))
	appendFile(t, path, lines(12, 14))
	e.waitIDs(t, ids(0, 14))
}

func TestTailRotationCopyTruncate(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.logs, "audit.log")
	appendFile(t, path, lines(0, 6))
	e.start(t, e.config(path))
	e.waitIDs(t, ids(0, 6))

	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".1", content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the tail sees the file shrink
	appendFile(t, path, lines(6, 9))
	e.waitIDs(t, ids(0, 9))
}

// TestTailRestartResumes: lines written and files rotated while the tail is
// down are all read after a restart, and none twice.
func TestTailRestartResumes(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.logs, "audit.log")
	appendFile(t, path, lines(0, 10))
	r := e.start(t, e.config(path))
	e.waitIDs(t, ids(0, 10))
	r.stop(t)

	appendFile(t, path, lines(10, 15))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(15, 20))

	r = e.start(t, e.config(path))
	e.waitIDs(t, ids(0, 20))
	r.stop(t)

	// A crash after publishing and before the checkpoint moved: wind the
	// checkpoint back and restart; the re-sent lines are duplicates.
	cpPath := filepath.Join(e.data, "checkpoint.json")
	raw, err := os.ReadFile(cpPath)
	if err != nil {
		t.Fatal(err)
	}
	var cp struct {
		Version int `json:"version"`
		Files   map[string]struct {
			File   json.RawMessage `json:"file"`
			Offset int64           `json:"offset"`
		} `json:"files"`
	}
	if err := json.Unmarshal(raw, &cp); err != nil {
		t.Fatal(err)
	}
	p, ok := cp.Files[path]
	if !ok || p.Offset != int64(len(lines(15, 20))) {
		t.Fatalf("checkpoint = %+v (known %v), want the end of the new file", p, ok)
	}
	p.Offset = 0
	cp.Files[path] = p
	if raw, err = json.Marshal(cp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cpPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	e.start(t, e.config(path))
	appendFile(t, path, lines(20, 22))
	e.waitIDs(t, ids(0, 22))
}

func TestTailDeadLettersInvalidLines(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.logs, "audit.log")
	appendFile(t, path, auditLine(0)+"not json\n"+`{"kind":"Event","stage":"ResponseComplete"}`+"\n\n"+auditLine(1))
	e.start(t, e.config(path))
	e.waitIDs(t, ids(0, 2))
	deadline := time.Now().Add(5 * time.Second)
	var dlq []*jetstream.RawStreamMsg
	for len(dlq) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		dlq = e.stream(t, topology.DeadLetterStream)
	}
	if len(dlq) != 2 {
		t.Fatalf("dead-letter stream holds %d records, want 2", len(dlq))
	}
	reasons := []string{dlq[0].Header.Get(headers.Error), dlq[1].Header.Get(headers.Error)}
	if !strings.Contains(reasons[0], "not valid JSON") || !strings.Contains(reasons[1], "no auditID") ||
		!strings.Contains(reasons[0], "audit.log") || string(dlq[0].Data) != "not json" ||
		dlq[0].Subject != "crowsnest.dlq.collector.k8s_audit.tail-test" {
		t.Fatalf("dead letters = %q, %q", reasons, dlq[0].Data)
	}
}

func TestTailOverlongLine(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.logs, "audit.log")
	long := `{"kind":"Event","pad":"` + strings.Repeat("x", 3000) + `"}` + "\n"
	appendFile(t, path, auditLine(0)+long+auditLine(1))
	cfg := e.config(path)
	cfg.MaxLineBytes = 1 * config.KiB
	e.start(t, cfg)
	e.waitIDs(t, ids(0, 2))
	dlq := e.stream(t, topology.DeadLetterStream)
	if len(dlq) != 1 || !strings.Contains(dlq[0].Header.Get(headers.Error), "max_line_bytes") {
		t.Fatalf("dead-letter stream = %d records, want the overlong line's head", len(dlq))
	}
}

func TestTailManyFiles(t *testing.T) {
	e := newEnv(t)
	for i, name := range []string{"a.log", "b.log", "c.log"} {
		appendFile(t, filepath.Join(e.logs, name), lines(i*100, i*100+4))
	}
	e.start(t, e.config(filepath.Join(e.logs, "*.log")))
	want := slices.Concat(ids(0, 4), ids(100, 104), ids(200, 204))
	slices.Sort(want)
	e.waitIDs(t, want)
	// A file that appears later is picked up from its beginning.
	appendFile(t, filepath.Join(e.logs, "d.log"), lines(300, 302))
	want = append(want, ids(300, 302)...)
	slices.Sort(want)
	e.waitIDs(t, want)
}

func TestTailStartAtEnd(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.logs, "audit.log")
	appendFile(t, path, lines(0, 5))
	cfg := e.config(path)
	cfg.StartAt = StartEnd
	e.start(t, cfg)
	time.Sleep(50 * time.Millisecond)
	appendFile(t, path, lines(5, 7))
	e.waitIDs(t, ids(5, 7))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"no paths", func(c *Config) { c.Paths = nil }, []string{"paths"}},
		{"bad pattern", func(c *Config) { c.Paths = []string{"/var/log/[audit"} }, []string{"paths[0]"}},
		{"start", func(c *Config) { c.StartAt = "middle" }, []string{"start_at"}},
		{"poll", func(c *Config) { c.PollInterval = 0 }, []string{"poll_interval"}},
		{"line", func(c *Config) { c.MaxLineBytes = 10 }, []string{"max_line_bytes"}},
		{"data dir", func(c *Config) { c.DataDir = "" }, []string{"data_dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want %q", err, w)
				}
			}
		})
	}
	cfg := NewDefaultConfig()
	if err := config.Decode([]byte("paths: [/a.log]\npoll_intervall: 1s\n"), "c.yaml", &cfg, config.WithEnviron(nil)); err == nil || !strings.Contains(err.Error(), "poll_intervall") {
		t.Fatalf("Decode(typo) = %v, want an unknown-key error", err)
	}
}

// onSubject reports whether a stored raw subject names collector and the key
// token of key (a request without an object is keyed by its user).
func onSubject(subject, collector, key string) bool {
	st, ok := topology.ParseRawStored(subject)
	return ok && st.Collector == collector && st.Key == topology.KeyToken(key)
}
