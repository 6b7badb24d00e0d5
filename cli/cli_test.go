package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// execute runs the CLI in-process and returns stdout, stderr and the exit code.
func execute(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand(strings.NewReader(stdin), &out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else {
			code = 1
		}
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

func TestConfigCheck(t *testing.T) {
	t.Setenv("CROWSNEST_TOPOLOGY__REPLICAS", "") // an empty override must not sneak in from the environment
	os.Unsetenv("CROWSNEST_TOPOLOGY__REPLICAS")
	cases := []struct {
		file     string
		code     int
		contains []string
	}{
		{"testdata/good.yaml", 0, []string{"testdata/good.yaml: ok"}},
		{"testdata/typo.yaml", 1, []string{`typo.yaml:4: unknown field "replcas"`, `did you mean "replicas"`, "typo.yaml:7:"}},
		{"testdata/invalid.yaml", 1, []string{"topology.replicas", "processor.normalize.max_depth", "collectors.replay.rate"}},
		{"testdata/missing.yaml", 1, []string{"missing.yaml"}},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			out, errOut, code := execute(t, "", "config", "check", tc.file)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, want := range tc.contains {
				if !strings.Contains(out+errOut, want) {
					t.Errorf("output lacks %q:\n%s%s", want, out, errOut)
				}
			}
		})
	}
}

func TestConfigCheckEnvOverride(t *testing.T) {
	t.Setenv("CROWSNEST_TOPOLOGY__REPLICAS", "7")
	_, errOut, code := execute(t, "", "config", "check", "testdata/good.yaml")
	if code != 1 || !strings.Contains(errOut, "topology.replicas") {
		t.Fatalf("env override not applied: exit %d, %s", code, errOut)
	}
	t.Setenv("CROWSNEST_TOPOLOGY__REPLICAS", "3")
	out, _, code := execute(t, "", "config", "check", "testdata/good.yaml")
	if code != 0 || !strings.Contains(out, "CROWSNEST_TOPOLOGY__REPLICAS") {
		t.Fatalf("override not reported: exit %d, %s", code, out)
	}
}

func TestNormalizeCommand(t *testing.T) {
	good := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"abc-1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/namespaces/a/pods/p","user":{"username":"bob"},"objectRef":{"resource":"pods","namespace":"a","name":"p"},"responseStatus":{"code":200},"stageTimestamp":"2026-11-26T10:00:00Z"}`
	in := good + "\nnot json\n" + strings.Replace(good, "abc-1", "abc-2", 1) + "\n"
	out, errOut, code := execute(t, in, "normalize", "--source", "k8s_audit")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one bad line)\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "stdin:2:") || !strings.Contains(errOut, "1 of 3 records rejected") {
		t.Fatalf("stderr should name line 2 and the count:\n%s", errOut)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var ids []string
	for sc.Scan() {
		var doc struct {
			Event struct{ ID string } `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("output line is not JSON: %v\n%s", err, sc.Text())
		}
		ids = append(ids, doc.Event.ID)
	}
	if strings.Join(ids, ",") != "abc-1-ResponseComplete,abc-2-ResponseComplete" {
		t.Fatalf("event ids %v", ids)
	}
	_, errOut, code = execute(t, "", "normalize", "--source", "nope")
	if code != 2 || !strings.Contains(errOut, `"nope"`) {
		t.Fatalf("unknown source: exit %d, %s", code, errOut)
	}
}

// readEvents returns every event id the file sink wrote under dir.
func readEvents(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "files", "events-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var doc struct {
				Event struct{ ID string } `json:"event"`
			}
			if err := json.Unmarshal(line, &doc); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			ids = append(ids, doc.Event.ID)
		}
	}
	return ids
}

// TestRunAllInOne is `crowsnest run --for` twice on one data dir: events
// reach the file sink, and the second run resumes without duplicates.
func TestRunAllInOne(t *testing.T) {
	dir := t.TempDir()
	run := func(maxEvents int64) {
		cfg := newDefaultConfig()
		cfg.DataDir = dir
		cfg.Telemetry.Listen = "127.0.0.1:0"
		cfg.Sinks.Terminal.Enabled = false
		cfg.Collectors.Replay.Rate = 0 // as fast as the bus takes them
		cfg.Collectors.Replay.MaxEvents = maxEvents
		cfg.Sinks.File.Runner.FlushInterval = 50 * time.Millisecond
		cfg.resolve()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		if err := runAllInOne(ctx, cfg, 20*time.Second, logger, io.Discard); err != nil {
			t.Fatalf("run: %v", err)
		}
	}
	run(300)
	first := readEvents(t, dir)
	if len(first) < 300 {
		t.Fatalf("first run stored %d events, want >= 300", len(first))
	}
	run(200)
	all := readEvents(t, dir)
	seen := map[string]bool{}
	for _, id := range all {
		if seen[id] {
			t.Fatalf("event %s stored twice", id)
		}
		seen[id] = true
	}
	if len(all) < 500 {
		t.Fatalf("after two runs %d events, want >= 500", len(all))
	}
}

func TestVersion(t *testing.T) {
	out, _, code := execute(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "crowsnest ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// TestConfigurationDocDecodes keeps docs/configuration.md true: its full
// example must load strictly and validate.
func TestConfigurationDocDecodes(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	if !ok {
		t.Fatal("docs/configuration.md has no yaml block")
	}
	block, _, _ := strings.Cut(rest, "```")
	path := filepath.Join(t.TempDir(), "doc.yaml")
	if err := os.WriteFile(path, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := execute(t, "", "config", "check", path)
	if code != 0 {
		t.Fatalf("the documented configuration does not check: %s%s", out, errOut)
	}
}
