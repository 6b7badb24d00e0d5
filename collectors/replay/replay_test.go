package replay

import (
	"context"
	"errors"
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
	js  jetstream.JetStream
	pub *publish.Publisher
	dir string
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
	pcfg.CollectorID = "replay-test"
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
	return &env{js: js, pub: pub, dir: t.TempDir()}
}

func (e *env) config() Config {
	cfg := NewDefaultConfig()
	cfg.Rate = 0
	cfg.DataDir = e.dir
	cfg.CheckpointInterval = 0
	return cfg
}

func (e *env) run(t *testing.T, cfg Config) error {
	t.Helper()
	r, err := New(cfg, Settings{Publisher: e.pub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return r.Run(ctx)
}

// storedIDs returns the message ids in every raw stream, and fails on a
// message stored twice under different ids for one position (which
// JetStream's dedup would not catch) by comparing with want.
func (e *env) storedIDs(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ids []string
	for _, src := range topology.Sources() {
		name, _ := topology.RawStream(src)
		s, err := e.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				t.Fatalf("%s seq %d: %v", name, seq, err)
			}
			if m.Header.Get(headers.Collector) != "replay-test" {
				t.Fatalf("%s seq %d: collector header %q", name, seq, m.Header.Get(headers.Collector))
			}
			ids = append(ids, m.Header.Get(headers.MsgID))
		}
	}
	slices.Sort(ids)
	return ids
}

// expectedIDs are the ids of positions [0, n) of instance.
func expectedIDs(t *testing.T, instance string, n int) []string {
	t.Helper()
	set := mustLoad(t)
	var ids []string
	for i := range n {
		pos := position{instance: instance, loop: int64(i / len(set.records)), index: i % len(set.records)}
		s := &set.records[pos.index]
		_, id, err := s.rw.rewrite(s, pos, testNow)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func readCheckpoint(t *testing.T, dir string) checkpoint {
	t.Helper()
	cp, ok, err := loadCheckpoint(dir)
	if err != nil || !ok {
		t.Fatalf("checkpoint: ok=%v err=%v", ok, err)
	}
	return cp
}

func checkExactly(t *testing.T, e *env, n int) {
	t.Helper()
	cp := readCheckpoint(t, e.dir)
	got, want := e.storedIDs(t), expectedIDs(t, cp.InstanceID, n)
	if !slices.Equal(got, want) {
		t.Fatalf("raw streams hold %d records, want exactly positions [0,%d) (%d records); first difference at %d",
			len(got), n, len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestReplayRestartResumesWithoutLossOrDuplicates(t *testing.T) {
	e := newEnv(t)
	perLoop := len(mustLoad(t).records)
	n, m := perLoop+33, 100 // the first run crosses a loop boundary

	cfg := e.config()
	cfg.MaxEvents = int64(n)
	cfg.BatchSize = 16
	if err := e.run(t, cfg); err != nil {
		t.Fatalf("first run: %v", err)
	}
	cp := readCheckpoint(t, e.dir)
	if cp.Loop != 1 || cp.Index != 33 || cp.Published != int64(n) {
		t.Fatalf("checkpoint after %d records = loop %d index %d published %d", n, cp.Loop, cp.Index, cp.Published)
	}
	checkExactly(t, e, n)

	cfg.MaxEvents = int64(m)
	if err := e.run(t, cfg); err != nil {
		t.Fatalf("second run: %v", err)
	}
	checkExactly(t, e, n+m)
}

// TestReplayCrashBeforeCheckpointDeduplicates: a crash after publishing but
// before the checkpoint moved re-sends records under the same ids, and
// JetStream stores them once.
func TestReplayCrashBeforeCheckpointDeduplicates(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.MaxEvents = 80
	if err := e.run(t, cfg); err != nil {
		t.Fatal(err)
	}
	// Wind the checkpoint back 50 records, as if the process died before
	// writing the last ones.
	cp := readCheckpoint(t, e.dir)
	cp.Index -= 50
	cp.Published -= 50
	if err := cp.save(e.dir); err != nil {
		t.Fatal(err)
	}
	cfg.MaxEvents = 70 // 50 re-sent, 20 new
	if err := e.run(t, cfg); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, e, 100)
}

func TestReplayLoopsBound(t *testing.T) {
	e := newEnv(t)
	perLoop := len(mustLoad(t).records)
	cfg := e.config()
	cfg.Loops = 2
	if err := e.run(t, cfg); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, e, 2*perLoop)
	// The loop count belongs to the data dir: a second run has nothing left.
	if err := e.run(t, cfg); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, e, 2*perLoop)
}

func TestReplayRateAndCancel(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Rate = 100
	cfg.MaxEvents = 30
	start := time.Now()
	if err := e.run(t, cfg); err != nil {
		t.Fatal(err)
	}
	// 30 records at 100/s with a burst of 10 take at least 0.2 s.
	if d := time.Since(start); d < 180*time.Millisecond || d > 3*time.Second {
		t.Fatalf("30 records at 100/s took %v", d)
	}

	cfg.MaxEvents = 0
	cfg.Rate = 50
	r, err := New(cfg, Settings{Publisher: e.pub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = r.Run(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run with a deadline = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Run took %v to stop after its deadline", d)
	}
	cp := readCheckpoint(t, e.dir)
	if cp.Published <= 30 {
		t.Fatalf("published %d after a cancelled run, want more than 30", cp.Published)
	}
	// What is stored is exactly what the checkpoint says, or more (records
	// in flight at the cancel are stored but not checkpointed; a restart
	// re-sends them under the same ids).
	stored := len(e.storedIDs(t))
	if int64(stored) < cp.Published || int64(stored) > cp.Published+int64(cfg.BatchSize) {
		t.Fatalf("stored %d records, checkpoint says %d", stored, cp.Published)
	}
	cfg.MaxEvents = 10
	if err := e.run(t, cfg); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, e, int(cp.Published)+10)
}

func TestReplayFiles(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "app.jsonl")
	if err := os.WriteFile(jsonl, []byte("{\"msg\":\"a\"}\n\n{\"msg\":\"b\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Files = []FileConfig{{Source: topology.SourceJSON, Path: jsonl}}
	cfg.Loops = 3
	if err := e.run(t, cfg); err != nil {
		t.Fatal(err)
	}
	ids := e.storedIDs(t)
	if len(ids) != 6 {
		t.Fatalf("stored %d records of 2 lines x 3 loops", len(ids))
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "json-") {
			t.Fatalf("id %q, want the json- content form", id)
		}
	}

	// Changing the files under an existing checkpoint starts a new loop.
	if err := os.WriteFile(jsonl, []byte("{\"msg\":\"c\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Loops = 5
	if err := e.run(t, cfg); err != nil {
		t.Fatal(err)
	}
	cp := readCheckpoint(t, e.dir)
	// Loops 0-2 ran on the old set; the checkpoint (loop 3, index 0) no
	// longer fits, so loop 3 is skipped and loop 4 replays the new record.
	if cp.Loop != 5 || len(e.storedIDs(t)) != 7 {
		t.Fatalf("after the change: loop %d, %d stored", cp.Loop, len(e.storedIDs(t)))
	}
}

func TestCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	cp, ok, err := loadCheckpoint(dir)
	if err != nil || ok || len(cp.InstanceID) != 32 {
		t.Fatalf("fresh dir: %+v ok=%v err=%v", cp, ok, err)
	}
	cp.Loop, cp.Index, cp.Published = 3, 7, 400
	if err := cp.save(dir); err != nil {
		t.Fatal(err)
	}
	back, ok, err := loadCheckpoint(dir)
	if err != nil || !ok || back.InstanceID != cp.InstanceID || back.Loop != 3 || back.Index != 7 {
		t.Fatalf("round trip: %+v ok=%v err=%v", back, ok, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d files after save, want only the checkpoint", len(entries))
	}
	if err := os.WriteFile(filepath.Join(dir, checkpointFile), []byte("{trunc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("corrupt checkpoint: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"negative rate", func(c *Config) { c.Rate = -1 }, []string{"rate"}},
		{"negative loops", func(c *Config) { c.Loops = -1 }, []string{"loops"}},
		{"negative max", func(c *Config) { c.MaxEvents = -1 }, []string{"max_events"}},
		{"no data dir", func(c *Config) { c.DataDir = "" }, []string{"data_dir"}},
		{"batch", func(c *Config) { c.BatchSize = 0 }, []string{"batch_size"}},
		{"bad file", func(c *Config) { c.Files = []FileConfig{{Source: "syslog"}} }, []string{"files[0].source", "files[0].path"}},
		{"gap records reserved", func(c *Config) { c.Files = []FileConfig{{Source: "collector", Path: "gaps.jsonl"}} }, []string{"files[0].source", "reserved"}},
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
	var cfg Config
	if err := config.Decode([]byte("rate: 5\nloop: 2\n"), "replay.yaml", &cfg, config.WithEnviron(nil)); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("Decode(typo) = %v, want an unknown-key error", err)
	}
}
