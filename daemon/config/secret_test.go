package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

const secretValue = "hunter2-do-not-print"

func TestSecretNeverPrinted(t *testing.T) {
	s := config.Secret(secretValue)
	cfg := newTestConfig()
	cfg.NATS.Password = s
	ptr := &cfg

	outputs := map[string]func() (string, error){}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-8v"} {
		outputs["fmt "+verb+" secret"] = func() (string, error) { return fmt.Sprintf(verb, s), nil }
		outputs["fmt "+verb+" struct"] = func() (string, error) { return fmt.Sprintf(verb, cfg), nil }
		outputs["fmt "+verb+" pointer"] = func() (string, error) { return fmt.Sprintf(verb, ptr), nil }
		outputs["fmt "+verb+" slice"] = func() (string, error) { return fmt.Sprintf(verb, []config.Secret{s}), nil }
		outputs["fmt "+verb+" map"] = func() (string, error) { return fmt.Sprintf(verb, map[string]config.Secret{"k": s}), nil }
	}
	outputs["fmt Sprint"] = func() (string, error) { return fmt.Sprint(s, cfg), nil }
	outputs["fmt Sprintln"] = func() (string, error) { return fmt.Sprintln(s, cfg), nil }
	outputs["String"] = func() (string, error) { return s.String(), nil }
	outputs["GoString"] = func() (string, error) { return s.GoString(), nil }
	outputs["error wrapping"] = func() (string, error) { return fmt.Errorf("dial: %v", s).Error(), nil }
	outputs["json struct"] = func() (string, error) { b, err := json.Marshal(cfg); return string(b), err }
	outputs["json indent"] = func() (string, error) { b, err := json.MarshalIndent(ptr, "", " "); return string(b), err }
	outputs["json map value"] = func() (string, error) {
		b, err := json.Marshal(map[string]config.Secret{"k": s})
		return string(b), err
	}
	outputs["yaml struct"] = func() (string, error) { b, err := yaml.Marshal(cfg); return string(b), err }
	outputs["yaml secret"] = func() (string, error) { b, err := yaml.Marshal(s); return string(b), err }
	outputs["MarshalText"] = func() (string, error) { b, err := s.MarshalText(); return string(b), err }
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
	} {
		outputs["slog "+h.name] = func() (string, error) {
			var buf bytes.Buffer
			log := slog.New(h.new(&buf))
			log.Info("connect", "password", s, slog.Any("cfg", cfg), slog.Any("ptr", ptr),
				slog.Group("g", "p", s), "nats", cfg.NATS)
			log.With("password", s).Info("with")
			return buf.String(), nil
		}
	}

	for name, out := range outputs {
		got, err := out()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.Contains(got, secretValue) || strings.Contains(got, fmt.Sprintf("%x", secretValue)) {
			t.Errorf("%s leaks the secret: %s", name, got)
		}
		if !strings.Contains(got, "[REDACTED]") && !strings.Contains(got, fmt.Sprintf("%x", "[REDACTED]")) {
			t.Errorf("%s: %q does not say [REDACTED]", name, got)
		}
	}
	if s.Value() != secretValue || !s.IsSet() || config.Secret("").IsSet() {
		t.Error("Value or IsSet do not return the secret")
	}
}

func TestSecretDecodes(t *testing.T) {
	var c natsConfig
	if err := config.Decode([]byte("password: \"p@ss: word\"\n"), "c.yaml", &c, config.WithEnviron(nil)); err != nil {
		t.Fatal(err)
	}
	if c.Password.Value() != "p@ss: word" {
		t.Errorf("password = %q", c.Password.Value())
	}
}

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		value   config.Secret
		file    string
		want    string
		wantErr bool
	}{
		{name: "value only", value: "v", want: "v"},
		{name: "neither", want: ""},
		{name: "file", file: write("a", "from-file"), want: "from-file"},
		{name: "one trailing newline dropped", file: write("b", "tok\n"), want: "tok"},
		{name: "CRLF dropped", file: write("c", "tok\r\n"), want: "tok"},
		{name: "only one newline dropped", file: write("d", "tok\n\n"), want: "tok\n"},
		{name: "inner spaces kept", file: write("e", " a b \n"), want: " a b "},
		{name: "both set", value: "v", file: write("f", "x"), wantErr: true},
		{name: "missing file", file: filepath.Join(dir, "missing"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ResolveSecret(tt.value, tt.file)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got.Value() != tt.want {
				t.Errorf("got %q, want %q", got.Value(), tt.want)
			}
			if tt.name == "missing file" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("err = %v; want it to wrap os.ErrNotExist", err)
			}
		})
	}
}
