package auditd

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// corpus is the go-libaudit test data shared beside the repository.
const corpus = "../../../shared/corpora/elastic-go-libaudit"

func render(chunk []byte, final bool) string {
	ready, lines, cut := groupChunk(chunk, final)
	var b strings.Builder
	for _, g := range ready {
		if g.reject != "" {
			fmt.Fprintf(&b, "dead-letter: %s\n", g.reject)
			continue
		}
		var types []string
		for _, i := range g.lines {
			types = append(types, lines[i].typ.String())
		}
		fmt.Fprintf(&b, "serial %d: %s\n", g.seq, strings.Join(types, " "))
	}
	fmt.Fprintf(&b, "consumed %d of %d bytes\n", cut, len(chunk))
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("differs from %s (go test -update to accept):\n%s", path, got)
	}
}

// TestGroupGolden groups our own sample (final and not: the last event,
// without a terminator, is held back) and go-libaudit's raw logs.
func TestGroupGolden(t *testing.T) {
	own, err := os.ReadFile(filepath.Join("testdata", "mixed.log"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "mixed", render(own, false)+"-- final\n"+render(own, true))

	files, _ := filepath.Glob(filepath.Join(corpus, "testdata", "*.log"))
	more, _ := filepath.Glob(filepath.Join(corpus, "auparse", "testdata", "*.log"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Skipf("go-libaudit corpus not found at %s", corpus)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "corpus-"+filepath.Base(filepath.Dir(filepath.Dir(f)))+"-"+filepath.Base(f), render(data, true))
	}
}

func FuzzGroupChunk(f *testing.F) {
	own, _ := os.ReadFile(filepath.Join("testdata", "mixed.log"))
	f.Add(own, false)
	f.Add(own[:len(own)/2], true)
	f.Fuzz(func(t *testing.T, chunk []byte, final bool) {
		ready, lines, cut := groupChunk(chunk, final)
		if cut < 0 || cut > len(chunk) {
			t.Fatalf("cut %d outside the chunk", cut)
		}
		if final && len(bytes.TrimSpace(chunk)) > 0 && cut != len(chunk) {
			t.Fatalf("final chunk consumed %d of %d", cut, len(chunk))
		}
		for _, g := range ready {
			if g.end > cut {
				t.Fatalf("published an event past the cut")
			}
			_ = eventBytes(chunk, lines, g)
		}
	})
}

func TestTailPublishesEvents(t *testing.T) {
	b := bustest.Start(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	own, err := os.ReadFile(filepath.Join("testdata", "mixed.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, own, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := NewDefaultConfig()
	cfg.Files.Paths = []string{log}
	cfg.Files.DataDir = t.TempDir()
	cfg.Files.PollInterval = 10 * time.Millisecond
	cfg.Files.FlushAfter = 300 * time.Millisecond
	cfg.Files.CheckpointInterval = 0
	run := func() (stop func()) {
		tl, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig())})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tl.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v", err)
			}
		}
	}
	stop := run()
	// Events 100, 101 and 102 at once; 103 (no terminator, nothing after
	// it) once the file has been idle for flush_after.
	ms := b.WaitMessages(t, bustest.StreamAuditd, 4, 10*time.Second)
	if !strings.HasPrefix(string(ms[0].Data), "type=SYSCALL msg=audit(1700000000.100:100)") || strings.Count(string(ms[0].Data), "\n") != 5 {
		t.Errorf("first event = %q", ms[0].Data)
	}
	if !strings.HasPrefix(string(ms[1].Data), "node=web-1 type=USER_LOGIN") {
		t.Errorf("second event = %q", ms[1].Data)
	}
	if !strings.Contains(string(ms[3].Data), ":103)") {
		t.Errorf("fourth event = %q", ms[3].Data)
	}
	if n := len(b.Messages(t, bustest.StreamDLQ)); n != 1 {
		t.Errorf("dead-letter stream holds %d, want the 1 non-audit line", n)
	}
	stop()
	// A restart on the same checkpoint adds nothing; new lines are read.
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, `type=USER_CMD msg=audit(1700000004.000:104): pid=30 uid=1000 auid=1000 ses=3 msg='cwd="/" cmd=6964 exe="/usr/bin/sudo" terminal=pts/0 res=success'`)
	f.Close()
	stop = run()
	defer stop()
	b.WaitMessages(t, bustest.StreamAuditd, 5, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if ms = b.Messages(t, bustest.StreamAuditd); len(ms) != 5 || !strings.Contains(string(ms[4].Data), "USER_CMD") {
		t.Errorf("after restart the stream holds %d events, want 5 ending with USER_CMD", len(ms))
	}
}
