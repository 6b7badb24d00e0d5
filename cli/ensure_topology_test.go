package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// TestConfigEnsureTopology: ensure_topology, the stage binaries' key, is
// part of the shared file `config check` checks (strictly typed), so one
// rendered file serves every binary.
func TestConfigEnsureTopology(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("ensure_topology: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := execute(t, "", "config", "check", good); code != 0 {
		t.Fatalf("config check ensure_topology: false: exit %d\n%s%s", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("ensure_topology: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := execute(t, "", "config", "check", bad); code == 0 || !strings.Contains(errOut, "ensure_topology") {
		t.Fatalf("config check ensure_topology: maybe: exit %d, %q", code, errOut)
	}
}

// TestRunWithoutEnsureTopology: the all-in-one with ensure_topology: false
// creates nothing; on a fresh store it stops naming the missing streams
// and the setup command.
func TestRunWithoutEnsureTopology(t *testing.T) {
	cfg := newDefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Telemetry.Listen = "127.0.0.1:0"
	cfg.Sinks.Terminal.Enabled = false
	cfg.EnsureTopology = false
	cfg.resolve()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := runAllInOne(ctx, cfg, 5*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if !errors.Is(err, topology.ErrMissing) || !strings.Contains(err.Error(), topology.SetupCommand) {
		t.Fatalf("run on a fresh store with ensure_topology false: %v, want the missing streams and %q", err, topology.SetupCommand)
	}
}
