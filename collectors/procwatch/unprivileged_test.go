package procwatch

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

const helperEnv = "CROWSNEST_TEST_PROCWATCH_HELPER"

// TestUnprivilegedHelper is not a test on its own: run as an unprivileged
// user by TestUnprivilegedReportsWhatItCannotSee, it scans this machine's
// /proc once and prints the capabilities event.
func TestUnprivilegedHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process only")
	}
	c := &Collector{cfg: NewDefaultConfig(), log: slog.New(slog.DiscardHandler), self: os.Getpid(), host: host{Hostname: "helper"}}
	if err := c.init(); err != nil {
		t.Fatal(err)
	}
	if err := c.scanProcs(true); err != nil {
		t.Fatal(err)
	}
	c.capabilities("start")
	for _, r := range c.pending {
		if gjson.GetBytes(r.Data, "kind").Str == KindCapabilities {
			os.Stdout.Write(append(r.Data, '\n'))
		}
	}
}

// TestUnprivilegedReportsWhatItCannotSee runs a scan as nobody (no
// capabilities) next to a root process, on the real /proc: the capabilities
// event must say that other users' exe and fds are unreadable, and list no
// capabilities.
func TestUnprivilegedReportsWhatItCannotSee(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to start a process as another user")
	}
	// A root process the helper can see but not inspect.
	root := exec.Command("sleep", "30")
	if err := root.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = root.Process.Kill(); _ = root.Wait() }()

	// The test binary, where nobody may execute it.
	dir, err := os.MkdirTemp("", "procwatch-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "procwatch.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestUnprivilegedHelper$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("helper: %v\n%s%s", err, out, stderr)
	}
	var ev gjson.Result
	for line := range strings.Lines(string(out)) {
		if r := gjson.Parse(line); r.Get("kind").Str == KindCapabilities {
			ev = r
		}
	}
	if !ev.Exists() {
		t.Fatalf("no capabilities event in the helper's output:\n%s", out)
	}
	if ev.Get("collector.uid").Int() != 65534 || len(ev.Get("collector.capabilities").Array()) != 0 {
		t.Errorf("collector identity: %s", ev.Get("collector").Raw)
	}
	v := ev.Get("visibility")
	t.Logf("as nobody: %s", v.Raw)
	if !v.Get("other_processes_visible").Bool() || v.Get("exe_unreadable_count").Int() < 1 || v.Get("exe_readable").Str == "all" ||
		v.Get("fd_readable").Str == "all" || v.Get("netlink_proc_connector").Str != "unavailable: needs CAP_NET_ADMIN" {
		t.Errorf("visibility does not admit what nobody cannot see: %s", v.Raw)
	}
	if !strings.Contains(v.Get("limitations").Raw, "CAP_SYS_PTRACE") {
		t.Errorf("limitations do not name CAP_SYS_PTRACE: %s", v.Get("limitations").Raw)
	}
}
