package file

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// fileStore is a directory the file sink writes to, for the conformance suite.
type fileStore struct {
	dir string
	cfg Config
}

func newFileStore(tb testing.TB) *fileStore {
	cfg := NewDefaultConfig()
	cfg.Dir = tb.TempDir()
	cfg.MaxFileBytes = 64 * 1024 // rotate during the suite
	return &fileStore{dir: cfg.Dir, cfg: cfg}
}

func (s *fileStore) Open(tb testing.TB) sink.Sink {
	tb.Helper()
	fs, err := New(s.cfg, sinktest.Settings(tb))
	if err != nil {
		tb.Fatalf("open file sink: %v", err)
	}
	return fs
}

func (s *fileStore) Stored(tb testing.TB) map[string]int {
	return storedIDs(tb, s.dir)
}

// storedIDs reads every data file in dir and counts the event ids, checking
// that each file holds only its own stream's records.
func storedIDs(tb testing.TB, dir string) map[string]int {
	tb.Helper()
	out := map[string]int{}
	for _, name := range dataFiles(tb, dir) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var doc struct {
				Event struct {
					ID   string `json:"id"`
					Kind string `json:"kind"`
				} `json:"event"`
			}
			if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
				tb.Fatalf("%s: line %q is not JSON: %v", name, sc.Text(), err)
			}
			if isAlerts := strings.HasPrefix(name, "alerts-"); isAlerts != (doc.Event.Kind == "alert") {
				tb.Errorf("%s holds a record of kind %q", name, doc.Event.Kind)
			}
			out[doc.Event.ID]++
		}
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
		_ = f.Close()
	}
	return out
}

func dataFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".jsonl") {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		Name:        "file",
		NewStore:    func(tb testing.TB) sinktest.Store { return newFileStore(tb) },
		ExactlyOnce: true,
		Reject:      []byte(`{"event": {"id": "not closed"`),
	})
}

// recs builds records of kind k with sequences from first, ids <prefix><seq>.
func recs(k sink.Kind, prefix string, first uint64, n int) []sink.Record {
	out := make([]sink.Record, n)
	for i := range out {
		seq := first + uint64(i)
		id := prefix + strconv.FormatUint(seq, 10)
		var data []byte
		if k == sink.KindAlerts {
			data = sinktest.AlertDoc(id)
		} else {
			data = sinktest.EventDoc(id)
		}
		out[i] = sink.Record{Data: data, ID: id, Kind: k, Seq: seq, Delivered: 1}
	}
	return out
}

func openSink(tb testing.TB, cfg Config) *Sink {
	tb.Helper()
	s, err := New(cfg, sink.Settings{})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func TestRedeliveryAfterCrashIsNotWrittenTwice(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Dir = t.TempDir()
	first := openSink(t, cfg)
	batch := recs(sink.KindEvents, "e", 1, 100)
	if err := first.WriteBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// Crash: no ack, no Close. A new process opens the same directory and
	// JetStream redelivers the whole batch, and more.
	second := openSink(t, cfg)
	redelivered := slices.Concat(batch[40:], recs(sink.KindEvents, "e", 101, 50))
	for i := range redelivered[:60] {
		redelivered[i].Delivered = 2
	}
	if err := second.WriteBatch(context.Background(), redelivered); err != nil {
		t.Fatal(err)
	}
	got := storedIDs(t, cfg.Dir)
	if len(got) != 150 {
		t.Fatalf("%d distinct ids stored, want 150", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	if files := dataFiles(t, cfg.Dir); len(files) != 2 {
		t.Errorf("files %v: want the first life's file and a new one", files)
	}
}

func TestRedeliveryOutOfOrderIsWritten(t *testing.T) {
	// Sequence 3 failed and comes back after 4..10 were written: a
	// high-water mark would skip it.
	cfg := NewDefaultConfig()
	cfg.Dir = t.TempDir()
	s := openSink(t, cfg)
	all := recs(sink.KindEvents, "e", 1, 10)
	if err := s.WriteBatch(context.Background(), slices.Concat(all[:2], all[3:])); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBatch(context.Background(), all[2:3]); err != nil {
		t.Fatal(err)
	}
	got := storedIDs(t, cfg.Dir)
	if len(got) != 10 || got["e3"] != 1 {
		t.Fatalf("stored %v, want e1..e10 once each", got)
	}
}

func TestRecoveryDropsUncommittedBytes(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Dir = t.TempDir()
	s := openSink(t, cfg)
	if err := s.WriteBatch(context.Background(), recs(sink.KindEvents, "e", 1, 10)); err != nil {
		t.Fatal(err)
	}
	name := s.writers[sink.KindEvents].name
	// A crash mid-write: half a line after the last commit, and a file
	// opened by a rotation that never committed.
	f, err := os.OpenFile(filepath.Join(cfg.Dir, name), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"event":{"id":"e11"`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	orphan := filepath.Join(cfg.Dir, "events-20991231T000000Z-000099.jsonl")
	if err := os.WriteFile(orphan, []byte(`{"event":{"id":"e12"}}`+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	// And a torn commit line in the index.
	jf, err := os.OpenFile(filepath.Join(cfg.Dir, indexDir, "events.journal"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jf.WriteString("c " + name + " 99999 11-1"); err != nil {
		t.Fatal(err)
	}
	_ = jf.Close()

	s2 := openSink(t, cfg)
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("uncommitted file survived recovery: %v", err)
	}
	if err := s2.WriteBatch(context.Background(), recs(sink.KindEvents, "e", 11, 2)); err != nil {
		t.Fatal(err)
	}
	got := storedIDs(t, cfg.Dir) // fails on the torn line if it survived
	if len(got) != 12 {
		t.Fatalf("stored %d ids, want 12: %v", len(got), got)
	}
	if got := dataFiles(t, cfg.Dir); len(got) != 2 || !strings.HasSuffix(got[1], "-000002.jsonl") {
		t.Errorf("files = %v, want the first life's and a new one numbered 2", got)
	}
}

func TestDamagedIndexRefusesToStart(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(cfg.Dir, indexDir), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, indexDir, "alerts.journal"), []byte("garbage\nc x 1 1-1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, sink.Settings{}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("New = %v, want an error naming the damaged line", err)
	}
}

func TestRotation(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Dir = t.TempDir()
	batchBytes := 0
	for _, r := range recs(sink.KindEvents, "e", 1, 3) {
		batchBytes += len(r.Data) + 1
	}
	cfg.MaxFileBytes = topology.ByteSize(batchBytes * 5 / 2) // two batches fit, three do not
	cfg.MaxFileAge = time.Hour
	s := openSink(t, cfg)
	clock := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }

	// By size: two batches per file.
	for i := range 6 {
		if err := s.WriteBatch(context.Background(), recs(sink.KindEvents, "e", uint64(1+3*i), 3)); err != nil {
			t.Fatal(err)
		}
	}
	files := dataFiles(t, cfg.Dir)
	want := []string{
		"events-20261126T101500Z-000001.jsonl",
		"events-20261126T101500Z-000002.jsonl",
		"events-20261126T101500Z-000003.jsonl",
	}
	if !slices.Equal(files, want) {
		t.Fatalf("files = %v, want %v", files, want)
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(cfg.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > int64(cfg.MaxFileBytes) {
			t.Errorf("%s is %d bytes, over max_file_bytes %d", f, fi.Size(), cfg.MaxFileBytes)
		}
	}

	// By age: the next batch after max_file_age opens a new file.
	clock = clock.Add(time.Hour)
	if err := s.WriteBatch(context.Background(), recs(sink.KindEvents, "e", 19, 1)); err != nil {
		t.Fatal(err)
	}
	// Alerts have files of their own.
	if err := s.WriteBatch(context.Background(), recs(sink.KindAlerts, "a", 1, 2)); err != nil {
		t.Fatal(err)
	}
	files = dataFiles(t, cfg.Dir)
	want = append(want, "events-20261126T111500Z-000004.jsonl")
	want = append([]string{"alerts-20261126T111500Z-000001.jsonl"}, want...)
	if !slices.Equal(files, want) {
		t.Fatalf("files = %v, want %v", files, want)
	}
	// A single batch larger than the limit gets a file of its own.
	if err := s.WriteBatch(context.Background(), recs(sink.KindEvents, "e", 20, 10)); err != nil {
		t.Fatal(err)
	}
	if n := len(dataFiles(t, cfg.Dir)); n != 6 {
		t.Fatalf("%d files after an oversized batch, want 6", n)
	}
	got := storedIDs(t, cfg.Dir)
	if len(got) != 31 {
		t.Fatalf("stored %d ids, want 31", len(got))
	}
}

func TestPermanentAndMultilineRecords(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Dir = t.TempDir()
	s := openSink(t, cfg)
	batch := recs(sink.KindEvents, "e", 1, 4)
	batch[1].Data = []byte("not json")
	batch[2].Data = []byte("{\n  \"event\": {\"id\": \"e3\", \"kind\": \"event\"}\n}")
	err := s.WriteBatch(context.Background(), batch)
	be, ok := err.(*sink.BatchError)
	if !ok {
		t.Fatalf("WriteBatch = %v, want a *BatchError", err)
	}
	if be.Len() != 1 || be.Items()[0].Index != 1 || !sink.IsPermanent(be.Items()[0].Err) {
		t.Fatalf("failures = %v, want record 1 permanently", be.Items())
	}
	got := storedIDs(t, cfg.Dir)
	if len(got) != 3 || got["e3"] != 1 {
		t.Fatalf("stored %v, want e1, e3 (compacted onto one line), e4", got)
	}
}

func TestPruneByAckFloor(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Dir = t.TempDir()
	s := openSink(t, cfg)
	t0 := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	now := t0
	s.now = func() time.Time { return now }
	if err := s.WriteBatch(context.Background(), recs(sink.KindEvents, "e", 1, 10)); err != nil {
		t.Fatal(err)
	}
	w := s.writers[sink.KindEvents]
	observe := func(at time.Duration, floor uint64) {
		now = t0.Add(at)
		s.ObserveConsumer(sink.ConsumerStatus{Kind: sink.KindEvents, AckFloor: floor})
	}
	observe(0, 7)
	if !w.written.has(1) {
		t.Fatalf("a floor just reported pruned at once: written = %v", w.written.r)
	}
	// A nats-server killed now comes back with the acks of 1..7 not on
	// disk and redelivers them: they are known, not written twice.
	redelivered := recs(sink.KindEvents, "e", 1, 7)
	for i := range redelivered {
		redelivered[i].Delivered = 2
	}
	if err := s.WriteBatch(context.Background(), redelivered); err != nil {
		t.Fatal(err)
	}
	for id, n := range storedIDs(t, cfg.Dir) {
		if n != 1 {
			t.Errorf("%s stored %d times after a redelivery below a fresh floor", id, n)
		}
	}
	observe(pruneLag/2, 9)
	if !w.written.has(1) {
		t.Fatalf("pruned before pruneLag: written = %v", w.written.r)
	}
	observe(pruneLag, 10)
	if w.written.has(7) || !w.written.has(8) {
		t.Fatalf("a floor of 7 pruneLag old: written = %v, want 8-10", w.written.r)
	}
	observe(pruneLag*2, 10)
	if w.written.has(10) {
		t.Fatalf("every floor pruneLag old: written = %v, want none of 1-10", w.written.r)
	}
	if len(w.floors) != 1 {
		t.Errorf("%d floors kept, want only the one not yet pruneLag old", len(w.floors))
	}
}

func TestConfigValidate(t *testing.T) {
	c := NewDefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	c.MaxFileBytes = 10
	c.MaxFileAge = 0
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "max_file_bytes") || !strings.Contains(err.Error(), "max_file_age") {
		t.Fatalf("Validate = %v, want both fields named", err)
	}
}
