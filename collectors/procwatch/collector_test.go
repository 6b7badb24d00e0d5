package procwatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
)

// watch runs a collector on this machine's real /proc, publishing to a
// real embedded JetStream, and returns a function that waits for an event
// matching pred.
func watch(t *testing.T, files []string) func(what string, pred func(gjson.Result) bool) gjson.Result {
	t.Helper()
	b := bustest.Start(t)
	cfg := NewDefaultConfig()
	cfg.PollInterval = 10 * time.Millisecond
	cfg.Files = files
	c, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig()), Hostname: "test-pod"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
	return func(what string, pred func(gjson.Result) bool) gjson.Result {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, m := range b.Messages(t, bustest.StreamProcwatch) {
				if !gjson.ValidBytes(m.Data) {
					t.Fatalf("invalid JSON record: %s", m.Data)
				}
				if r := gjson.ParseBytes(m.Data); pred(r) {
					return r
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s event", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestRealProcesses(t *testing.T) {
	wait := watch(t, nil)
	caps := wait("capabilities", func(r gjson.Result) bool { return r.Get("kind").Str == KindCapabilities })
	if caps.Get("reason").Str != "start" || caps.Get("collector.pid").Int() != int64(os.Getpid()) ||
		!strings.HasSuffix(caps.Get("visibility.exec_detection").Str, "poll") || caps.Get("visibility.processes_visible").Int() < 2 {
		t.Errorf("capabilities event: %s", caps.Raw)
	}
	// This test process was running before the collector: seen at startup.
	wait("startup exec of the test", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindProcessExec && r.Get("process.pid").Int() == int64(os.Getpid()) && r.Get("seen").Str == "startup"
	})

	dir := t.TempDir()
	cmd := exec.Command("sleep", "3.14159")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := int64(cmd.Process.Pid)
	ev := wait("exec of sleep", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindProcessExec && r.Get("process.pid").Int() == pid && r.Get("process.name").Str == "sleep"
	})
	if seen := ev.Get("seen").Str; seen != "poll" && seen != "netlink" {
		t.Errorf("seen = %q, want poll or netlink", seen)
	}
	sleepPath, _ := exec.LookPath("sleep")
	sleepPath, _ = filepath.EvalSymlinks(sleepPath)
	for path, want := range map[string]string{
		"process.ppid":       strconv.Itoa(os.Getpid()),
		"process.args":       `["sleep","3.14159"]`,
		"process.exe":        sleepPath,
		"process.cwd":        dir,
		"process.uid":        strconv.Itoa(os.Getuid()),
		"process.gid":        strconv.Itoa(os.Getgid()),
		"parent.pid":         strconv.Itoa(os.Getpid()),
		"host.hostname":      "test-pod",
		"process.start_time": ev.Get("time").Str,
	} {
		got := ev.Get(path)
		if got.Raw != want && got.String() != want {
			t.Errorf("%s = %s, want %s", path, got.Raw, want)
		}
	}
	st, err := time.Parse(time.RFC3339Nano, ev.Get("process.start_time").Str)
	if err != nil || time.Since(st) > time.Minute || time.Since(st) < -2*time.Second {
		t.Errorf("start_time %q is not about now (%v)", ev.Get("process.start_time").Str, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	wait("exit of sleep", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindProcessExit && r.Get("process.pid").Int() == pid
	})
}

func TestRealSockets(t *testing.T) {
	wait := watch(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := int64(ln.Addr().(*net.TCPAddr).Port)
	me := int64(os.Getpid())
	l := wait("tcp listener", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindNetworkListen && r.Get("local.port").Int() == port && r.Get("transport").Str == "tcp"
	})
	if l.Get("process.pid").Int() != me || l.Get("local.ip").Str != "127.0.0.1" || l.Get("socket.state").Str != "LISTEN" {
		t.Errorf("listener event: %s", l.Raw)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			time.Sleep(5 * time.Second)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lport := int64(conn.LocalAddr().(*net.TCPAddr).Port)
	out := wait("outbound connection", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindNetworkConnection && r.Get("local.port").Int() == lport && r.Get("direction").Str == "outbound"
	})
	if out.Get("remote.port").Int() != port || out.Get("process.pid").Int() != me || out.Get("socket.state").Str != "ESTABLISHED" {
		t.Errorf("outbound event: %s", out.Raw)
	}
	wait("inbound side", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindNetworkConnection && r.Get("local.port").Int() == port &&
			r.Get("remote.port").Int() == lport && r.Get("direction").Str == "inbound"
	})

	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer pc.Close()
	uport := int64(pc.LocalAddr().(*net.UDPAddr).Port)
	u := wait("udp6 listener", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindNetworkListen && r.Get("transport").Str == "udp" && r.Get("local.port").Int() == uport
	})
	if u.Get("type").Str != "ipv6" || u.Get("local.ip").Str != "::1" || u.Get("process.pid").Int() != me {
		t.Errorf("udp6 listener event: %s", u.Raw)
	}
}

func TestRealFiles(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "app.conf")
	if err := os.WriteFile(filepath.Join(dir, "existing"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait := watch(t, []string{dir, cfgFile})
	wait("capabilities", func(r gjson.Result) bool { return r.Get("kind").Str == KindCapabilities })

	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	p := filepath.Join(dir, "new.bin")
	if err := os.WriteFile(p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := wait("create", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindFileChange && r.Get("file.path").Str == p && r.Get("file.op").Str == "create"
	})
	if c.Get("file.sha256").Str != sum("hello") || c.Get("file.mode").Str != "0600" || c.Get("file.size").Int() != 5 {
		t.Errorf("create event: %s", c.Raw)
	}
	if err := os.WriteFile(filepath.Join(dir, "existing"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := wait("write", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindFileChange && r.Get("file.op").Str == "write" && r.Get("file.sha256").Str == sum("v2")
	})
	if w.Get("file.previous_sha256").Str != sum("v1") {
		t.Errorf("write event: %s", w.Raw)
	}
	// A single watched file replaced by rename (as editors and config
	// reloaders do) is still followed.
	tmp := cfgFile + ".tmp"
	if err := os.WriteFile(tmp, []byte("port=1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, cfgFile); err != nil {
		t.Fatal(err)
	}
	wait("watched file created by rename", func(r gjson.Result) bool {
		return r.Get("file.path").Str == cfgFile && r.Get("file.sha256").Str == sum("port=1")
	})
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	wait("remove", func(r gjson.Result) bool {
		return r.Get("file.path").Str == p && r.Get("file.op").Str == "remove" && r.Get("file.previous_sha256").Str == sum("hello")
	})
}

// TestRealExecWithoutFork: a process that calls execve keeps its pid and
// start time; the new program is reported as an exec of that pid.
func TestRealExecWithoutFork(t *testing.T) {
	wait := watch(t, nil)
	cmd := exec.Command("sh", "-c", "sleep 0.3; exec sleep 2.71828")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := int64(cmd.Process.Pid)
	first := wait("exec of sh", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindProcessExec && r.Get("process.pid").Int() == pid && r.Get("process.name").Str == "sh"
	})
	second := wait("exec of sleep in the same pid", func(r gjson.Result) bool {
		return r.Get("kind").Str == KindProcessExec && r.Get("process.pid").Int() == pid && r.Get("process.args.1").Str == "2.71828"
	})
	if first.Get("process.start_time").Str != second.Get("process.start_time").Str {
		t.Errorf("start time changed across execve: %s vs %s", first.Get("process.start_time"), second.Get("process.start_time"))
	}
}

// TestNetlinkSeesEveryExec: where the process events connector can be
// opened (root here), processes far shorter than the poll interval are all
// reported.
func TestNetlinkSeesEveryExec(t *testing.T) {
	pc, err := openProcConnector()
	if err != nil {
		t.Skipf("process events connector unavailable: %v", err)
	}
	pc.close()
	b := bustest.Start(t)
	cfg := NewDefaultConfig()
	cfg.PollInterval = 5 * time.Second // polling alone would miss them all
	cfg.Network = false
	c, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}()
	b.WaitMessages(t, bustest.StreamProcwatch, 1, 5*time.Second) // started
	pids := map[int64]bool{}
	for range 50 {
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pids[int64(cmd.Process.Pid)] = true
	}
	deadline := time.Now().Add(15 * time.Second) // flushed at the next 5 s poll
	for {
		seen := 0
		for _, m := range b.Messages(t, bustest.StreamProcwatch) {
			r := gjson.ParseBytes(m.Data)
			if r.Get("kind").Str == KindProcessExec && r.Get("seen").Str == "netlink" && pids[r.Get("process.pid").Int()] {
				seen++
			}
		}
		if seen >= len(pids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("netlink reported %d of %d short-lived execs", seen, len(pids))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The pod's namespace keys every record, so its process events share a
// partition with the pod's audit events.
func TestRecordsKeyedByNamespace(t *testing.T) {
	b := bustest.Start(t)
	cfg := NewDefaultConfig()
	cfg.PollInterval = 10 * time.Millisecond
	c, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig()), Hostname: "test-pod", Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	msgs := b.WaitMessages(t, bustest.StreamProcwatch, 1, 10*time.Second)
	cancel()
	<-done
	for _, m := range msgs {
		if st, ok := topology.ParseRawStored(m.Subject); !ok || st.Key != topology.KeyToken("ns/shop") {
			t.Errorf("record on %s, want key token of ns/shop", m.Subject)
		}
	}
}
