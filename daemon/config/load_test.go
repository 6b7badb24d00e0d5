package config_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

var update = flag.Bool("update", false, "rewrite testdata/decode/*.golden from the current output")

// TestDecodeGolden decodes every testdata/decode/*.yaml into a defaulted
// testConfig and compares the error, or the resulting config, with the
// .golden file beside it. Regenerate with: go test ./config -run Golden -update
func TestDecodeGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/decode/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no inputs in testdata/decode")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			cfg := newTestConfig()
			got := decodeResult(t, data, filepath.Base(in), &cfg)
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("decode %s:\n--- got\n%s--- want\n%s", in, got, want)
			}
		})
	}
}

func decodeResult(t *testing.T, data []byte, name string, cfg *testConfig) string {
	t.Helper()
	if err := config.Decode(data, name, cfg, config.WithEnviron(nil)); err != nil {
		return "error:\n" + err.Error() + "\n"
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return "ok:\n" + string(out)
}

// TestDecodeErrors pins the facts the golden files show, so that a careless
// -update cannot erase them: the line, the key path and the words a user
// needs.
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error, in order
		line int      // line of the first DecodeError
		path string   // its key path
	}{
		{
			name: "unknown key suggests the nearest",
			yaml: "sinks:\n  file:\n    dir: /x\n    replcas: 3\n",
			want: []string{`crowsnest.yaml:4: unknown field "replcas" in sinks.file (did you mean "replicas"?)`},
			line: 4, path: "sinks.file.replcas",
		},
		{
			name: "unknown top-level key",
			yaml: "nast: {}\n",
			want: []string{`crowsnest.yaml:1: unknown field "nast" (did you mean "nats"?)`},
			line: 1, path: "nast",
		},
		{
			name: "case is a typo too",
			yaml: "nats:\n  URL: nats://x\n",
			want: []string{`unknown field "URL" in nats (did you mean "url"?)`},
			line: 2, path: "nats.URL",
		},
		{
			name: "no near key lists the known ones",
			yaml: "sinks:\n  file:\n    compression: zstd\n",
			want: []string{`unknown field "compression" in sinks.file (known fields: dir, replicas, max_bytes, port, level)`},
			line: 3, path: "sinks.file.compression",
		},
		{
			name: "unknown key inside a map of sections, with inline fields known",
			yaml: "routes:\n  audit:\n    id: a\n    subjcet: s\n",
			want: []string{`crowsnest.yaml:4: unknown field "subjcet" in routes.audit (did you mean "subject"?)`},
			line: 4, path: "routes.audit.subjcet",
		},
		{
			name: "every unknown key at once, by line",
			yaml: "nats:\n  urll: x\n  timeuot: 5s\n",
			want: []string{`crowsnest.yaml:2: unknown field "urll"`, "\n", `crowsnest.yaml:3: unknown field "timeuot" in nats (did you mean "timeout"?)`},
			line: 2, path: "nats.urll",
		},
		{
			name: "string for an int",
			yaml: "nats:\n  max_reconnects: lots\n",
			want: []string{`crowsnest.yaml:2: nats.max_reconnects: cannot use "lots" as int`},
			line: 2, path: "nats.max_reconnects",
		},
		{
			name: "duration without a unit",
			yaml: "nats:\n\n  timeout: 10\n",
			want: []string{`crowsnest.yaml:3: nats.timeout: cannot use 10 as a duration (write it with a unit`},
			line: 3, path: "nats.timeout",
		},
		{
			name: "fraction for an int is not truncated",
			yaml: "sinks:\n  file:\n    replicas: 1.5\n",
			want: []string{`crowsnest.yaml:3: sinks.file.replicas: cannot use 1.5 as int`},
			line: 3, path: "sinks.file.replicas",
		},
		{
			name: "out of range",
			yaml: "sinks:\n  file:\n    port: 70000\n",
			want: []string{`crowsnest.yaml:3: sinks.file.port: cannot use 70000 as uint16`},
			line: 3, path: "sinks.file.port",
		},
		{
			name: "bad byte size has its line",
			yaml: "sinks:\n  file:\n    max_bytes: 10XB\n",
			want: []string{`crowsnest.yaml:3: sinks.file.max_bytes: invalid byte size "10XB": unknown unit "XB"`},
			line: 3, path: "sinks.file.max_bytes",
		},
		{
			name: "TextUnmarshaler error has its line",
			yaml: "sinks:\n  file:\n    level: verbose\n",
			want: []string{`crowsnest.yaml:3: sinks.file.level: unknown level "verbose"`},
			line: 3, path: "sinks.file.level",
		},
		{
			name: "mapping for a string",
			yaml: "nats:\n  url:\n    host: x\n",
			want: []string{`crowsnest.yaml:3: nats.url: cannot use a mapping as a string`},
			line: 3, path: "nats.url",
		},
		{
			name: "scalar for a section",
			yaml: "nats: nats://x:4222\n",
			want: []string{`crowsnest.yaml:1: nats: cannot use "nats://x:4222" as a mapping of keys`},
			line: 1, path: "nats",
		},
		{
			name: "list element",
			yaml: "limits:\n  retries: [1, -2]\n",
			want: []string{`crowsnest.yaml:2: limits.retries[1]: cannot use -2 as uint32`},
			line: 2, path: "limits.retries[1]",
		},
		{
			name: "UnmarshalYAML error is located at its value",
			yaml: "limits:\n  window: often\n",
			want: []string{`crowsnest.yaml:2: limits.window: window: time: invalid duration "often"`},
			line: 2, path: "limits.window",
		},
		{
			name: "type error inside a value that decodes itself keeps the inner line",
			yaml: "limits:\n  window:\n    size: 2\n    every: soon\n",
			want: []string{"crowsnest.yaml:4: limits.window: cannot unmarshal !!str `soon` into time.Duration"},
			line: 4, path: "limits.window",
		},
		{
			name: "duplicate key",
			yaml: "nats:\n  url: a\n  url: b\n",
			want: []string{`crowsnest.yaml:3: key "url" in nats is already defined at line 2`},
			line: 3, path: "nats.url",
		},
		{
			name: "second document",
			yaml: "nats: {}\n---\nnats: {}\n",
			want: []string{`crowsnest.yaml:2: a second YAML document`},
			line: 2,
		},
		{
			name: "trailing document separator is a second document",
			yaml: "nats: {}\n---\n",
			want: []string{`crowsnest.yaml:`, `a second YAML document`},
		},
		{
			name: "syntax error",
			yaml: "nats:\n  url: a\n bad: indent\n",
			want: []string{`crowsnest.yaml:2: did not find expected key`},
			line: 2,
		},
		{
			name: "top level must be a mapping",
			yaml: "- a\n- b\n",
			want: []string{`crowsnest.yaml:1: cannot use a list as a mapping of keys`},
			line: 1,
		},
		{
			name: "unknown key merged through an anchor",
			yaml: "routes:\n  a: &r\n    subject: s\n  b:\n    <<: *r\n    subjct: t\n",
			want: []string{`crowsnest.yaml:6: unknown field "subjct" in routes.b (did you mean "subject"?)`},
			line: 6, path: "routes.b.subjct",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newTestConfig()
			err := config.Decode([]byte(tt.yaml), "crowsnest.yaml", &cfg, config.WithEnviron(nil))
			if err == nil {
				t.Fatal("Decode succeeded; want an error")
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q\ndoes not contain %q (in order)", msg, w)
				}
				rest = rest[i+len(w):]
			}
			de, ok := errors.AsType[*config.DecodeError](err)
			if !ok {
				t.Fatalf("error %q is not a *config.DecodeError", msg)
			}
			if de.File != "crowsnest.yaml" {
				t.Errorf("File = %q", de.File)
			}
			if tt.line != 0 && de.Line != tt.line {
				t.Errorf("Line = %d, want %d", de.Line, tt.line)
			}
			if tt.path != "" && de.Path != tt.path {
				t.Errorf("Path = %q, want %q", de.Path, tt.path)
			}
		})
	}
}

func TestDecodeKeepsDefaults(t *testing.T) {
	for _, data := range []string{"", "\n\n", "# only a comment\n", "---\n", "~\n", "{}\n", "nats: {}\n", "nats:\n"} {
		cfg := newTestConfig()
		if err := config.Decode([]byte(data), "c.yaml", &cfg, config.WithEnviron(nil)); err != nil {
			t.Errorf("Decode(%q): %v", data, err)
			continue
		}
		if want := newTestConfig(); cfg.NATS != want.NATS || cfg.Sinks != want.Sinks {
			t.Errorf("Decode(%q) changed defaults: %+v", data, cfg)
		}
	}
}

func TestDecodeOverridesOnlyPresentKeys(t *testing.T) {
	cfg := newTestConfig()
	data := "nats:\n  timeout: 1m30s\nsinks:\n  file:\n    max_bytes: 1024\n"
	if err := config.Decode([]byte(data), "c.yaml", &cfg, config.WithEnviron(nil)); err != nil {
		t.Fatal(err)
	}
	want := newTestConfig()
	want.NATS.Timeout = 90 * time.Second
	want.Sinks.File.MaxBytes = 1024
	if cfg.NATS != want.NATS || cfg.Sinks != want.Sinks {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
}

func TestDurationFromYAML(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`"10m"`: 10 * time.Minute, "10m": 10 * time.Minute, "1h30m": 90 * time.Minute,
		"250ms": 250 * time.Millisecond, "0s": 0, "-5s": -5 * time.Second,
	} {
		var cfg natsConfig
		if err := config.Decode([]byte("timeout: "+in), "c.yaml", &cfg, config.WithEnviron(nil)); err != nil {
			t.Errorf("timeout: %s: %v", in, err)
			continue
		}
		if cfg.Timeout != want {
			t.Errorf("timeout: %s = %v, want %v", in, cfg.Timeout, want)
		}
	}
	for _, in := range []string{"10", "0", "1.5", "10 minutes", "true"} {
		var cfg natsConfig
		if err := config.Decode([]byte("timeout: "+in), "c.yaml", &cfg, config.WithEnviron(nil)); err == nil {
			t.Errorf("timeout: %s decoded as %v; want an error", in, cfg.Timeout)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "crowsnest.yaml")
	if err := os.WriteFile(path, []byte("nats:\n  url: nats://file:4222\n  tls: yes please\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := newTestConfig()
	err := config.Load(path, &cfg, config.WithEnviron(nil))
	if err == nil || !strings.HasPrefix(err.Error(), path+":3: nats.tls: ") {
		t.Errorf("Load = %v; want an error at %s:3", err, path)
	}

	_, statErr := os.Stat(filepath.Join(dir, "missing.yaml"))
	err = config.Load(filepath.Join(dir, "missing.yaml"), &cfg)
	if !errors.Is(err, os.ErrNotExist) || statErr == nil {
		t.Errorf("Load(missing) = %v; want an error wrapping os.ErrNotExist", err)
	}
}

func TestDecodeRejectsBadDestination(t *testing.T) {
	var nilPtr *testConfig
	for _, dst := range []any{nil, testConfig{}, nilPtr} {
		if err := config.Decode([]byte("nats: {}"), "c.yaml", dst); err == nil {
			t.Errorf("Decode into %T succeeded", dst)
		}
	}
}

// FuzzDecode: no input may panic, and an accepted input must decode the same
// way twice (the strict check and the decoder agree).
func FuzzDecode(f *testing.F) {
	inputs, err := filepath.Glob("testdata/decode/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("nats: {timeout: 10, url: [1]}\nlimits: {retries: !!binary aGk=}"))
	f.Add([]byte("routes: {a: {<<: [*x]}}"))
	f.Add([]byte("? [a]\n: b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := newTestConfig()
		err := config.Decode(data, "fuzz.yaml", &cfg, config.WithEnviron(nil))
		if err == nil {
			again := newTestConfig()
			if err := config.Decode(data, "fuzz.yaml", &again, config.WithEnviron(nil)); err != nil {
				t.Fatalf("second decode failed: %v", err)
			}
			return
		}
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}
