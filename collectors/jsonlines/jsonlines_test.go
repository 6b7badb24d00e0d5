package jsonlines

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func tetragonConfig() Config {
	cfg := NewDefaultConfig()
	cfg.Source = topology.SourceTetragon
	cfg.IDField = "process_exec.process.exec_id"
	cfg.Stdin = true
	return cfg
}

func TestLinesGolden(t *testing.T) {
	s := &Source{cfg: tetragonConfig()}
	in, err := os.ReadFile(filepath.Join("testdata", "lines.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	n := 0
	for line := range bytes.Lines(in) {
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			fmt.Fprintf(&got, "%d blank\n", n)
			continue
		}
		rec, reject := s.record(line, time.Time{})
		if reject != "" {
			fmt.Fprintf(&got, "%d dead-letter %s: %s\n", n, rec.ID, reject)
		} else {
			fmt.Fprintf(&got, "%d id %s\n", n, rec.ID)
		}
	}
	path := filepath.Join("testdata", "lines.golden")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("differs from %s (go test -update to accept):\n%s", path, got.Bytes())
	}
}

func FuzzRecord(f *testing.F) {
	in, _ := os.ReadFile(filepath.Join("testdata", "lines.jsonl"))
	for line := range bytes.Lines(in) {
		f.Add(bytes.TrimSpace(line))
	}
	s := &Source{cfg: tetragonConfig()}
	f.Fuzz(func(t *testing.T, line []byte) {
		if len(line) == 0 {
			return
		}
		rec, _ := s.record(line, time.Time{})
		if err := msgid.Validate(rec.ID); err != nil {
			t.Fatal(err)
		}
	})
}

func start(t *testing.T, b *bustest.Bus, cfg Config, stdin string) (*Source, chan error, context.CancelFunc) {
	t.Helper()
	s, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig()), Stdin: strings.NewReader(stdin)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(cancel)
	return s, done, cancel
}

func TestStdinEndsAfterPublishing(t *testing.T) {
	b := bustest.Start(t)
	in, _ := os.ReadFile(filepath.Join("testdata", "lines.jsonl"))
	_, done, _ := start(t, b, tetragonConfig(), string(in))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stdin source did not finish")
	}
	// Every line is in a stream once stdin ended: 6 records, 3 dead letters.
	if n := len(b.Messages(t, bustest.StreamTetragon)); n != 6 {
		t.Errorf("tetragon stream holds %d, want 6", n)
	}
	if n := len(b.Messages(t, bustest.StreamDLQ)); n != 2 {
		t.Errorf("dead-letter stream holds %d, want 2", n)
	}
}

func TestFilesFollowRotation(t *testing.T) {
	b := bustest.Start(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "events.log")
	write := func(path string, from, to int) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			fmt.Fprintf(f, `{"id":"e%d","msg":"hello"}`+"\n", i)
		}
		f.Close()
	}
	write(p, 0, 10)
	cfg := NewDefaultConfig()
	cfg.IDField = "id"
	cfg.Files.Paths = []string{p}
	cfg.Files.DataDir = t.TempDir()
	cfg.Files.PollInterval = 10 * time.Millisecond
	cfg.Files.RotateWait = 50 * time.Millisecond
	cfg.Files.CheckpointInterval = 0
	_, done, cancel := start(t, b, cfg, "")
	b.WaitMessages(t, bustest.StreamJSON, 10, 10*time.Second)
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	write(p+".1", 10, 15) // the writer had these buffered
	write(p, 15, 25)
	ms := b.WaitMessages(t, bustest.StreamJSON, 25, 10*time.Second)
	for i, m := range ms {
		if m.ID != fmt.Sprintf("json-e%d", i) {
			t.Fatalf("message %d id %s", i, m.ID)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

func TestHTTP(t *testing.T) {
	b := bustest.Start(t)
	cfg := NewDefaultConfig()
	cfg.HTTP.Enabled = true
	cfg.HTTP.Server.Listen = "127.0.0.1:0"
	cfg.HTTP.Server.AllowInsecureLoopback = true
	cfg.IDField = "id"
	s, _, _ := start(t, b, cfg, "")
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"id":"a"}` + "\n" + `{"id":"b"}`, 200},
		{`[{"id":"c"},{"id":"d"}]`, 200},
		{"{\n  \"id\": \"e\"\n}\n", 200},
		{`nope`, 400},
	} {
		resp, err := http.Post(s.URL(), "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("POST %q = %d, want %d", tc.body, resp.StatusCode, tc.want)
		}
	}
	if got := bustest.IDs(b.Messages(t, bustest.StreamJSON)); strings.Join(got, ",") != "json-a,json-b,json-c,json-d,json-e" {
		t.Errorf("ids = %v", got)
	}
}

func TestConfigValidateSource(t *testing.T) {
	tests := []struct {
		source string
		want   string // "" = valid
	}{
		{topology.SourceJSON, ""},
		{topology.SourceTetragon, ""},
		{"syslog", "must be one of"},
		{topology.SourceCollector, "reserved for the collectors' own gap records"},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			cfg := NewDefaultConfig()
			cfg.Stdin = true
			cfg.Source = tt.source
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
