package detect

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink the watcher goroutine and the test share.
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

// TestWatchReloadsValidSetsOnly: a changed rule directory is loaded and
// swapped in; a set with an invalid rule is reported and the previous set
// keeps running.
func TestWatchReloadsValidSetsOnly(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("exec.yml", ruleExec)
	cfg := NewDefaultConfig()
	cfg.Builtin = false
	cfg.RulesDirs = []string{dir}
	cfg.ReloadInterval = 10 * time.Millisecond
	cfg.SuppressionWindow = 0
	baseline, err := Fingerprint(cfg.RulesDirs)
	if err != nil {
		t.Fatal(err)
	}
	rules, _, err := Load(LoadOptions{}, cfg.Sources()...)
	if err != nil {
		t.Fatal(err)
	}
	eng := NewEngine(rules, cfg)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, cfg, eng, LoadOptions{}, log, baseline)
	}()
	defer func() {
		cancel()
		<-done
	}()

	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	fires := func(name string) bool {
		for _, a := range collect(t, eng, denied("d-"+name, "bob", "pods", t0)) {
			if a.Rule.Name == name {
				return true
			}
		}
		return false
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s; logs:\n%s", what, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	write("denied.yml", "title: Denied\nid: dddddddd-0000-4000-8000-000000000001\nlogsource: {product: kubernetes, service: audit}\ndetection: {s: {responseStatus.code: 403}, condition: s}\n")
	waitFor("the new rule was not loaded", func() bool { return fires("Denied") })

	write("broken.yml", "title: [\n")
	waitFor("the invalid set was not reported", func() bool { return strings.Contains(logs.String(), "previous set keeps running") })
	if !fires("Denied") || len(eng.Rules().All()) != 2 {
		t.Fatal("an invalid rule replaced the running set")
	}

	if err := os.Remove(filepath.Join(dir, "broken.yml")); err != nil {
		t.Fatal(err)
	}
	write("unsupported.yml", "title: u\nlogsource: {product: windows}\ndetection: {s: {a: b}, condition: s}\n")
	waitFor("a set with only an unsupported rule was not loaded", func() bool {
		return strings.Count(logs.String(), "detection rules reloaded") >= 2
	})
	if !fires("Denied") {
		t.Fatal("the valid rules were dropped with the unsupported one")
	}
}

// TestSwapKeepsCorrelationWindows: a reload that keeps a correlation
// unchanged keeps its open windows.
func TestSwapKeepsCorrelationWindows(t *testing.T) {
	files := map[string]string{"base.yml": baseRules, "corr.yml": corrRule("  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {gte: 2}\n")}
	eng := NewEngine(loadFS(t, files), NewDefaultConfig())
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	collect(t, eng, denied("1", "bob", "pods", t0))
	eng.Swap(loadFS(t, files))
	alerts := collect(t, eng, denied("2", "bob", "pods", t0.Add(time.Second)))
	if len(alerts) != 1 || alerts[0].Crowsnest.Alert.Correlation != "event_count" {
		t.Fatalf("alerts after the swap: %d", len(alerts))
	}
}
