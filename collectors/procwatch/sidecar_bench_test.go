//go:build linux

package procwatch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
)

// BenchmarkSidecarCost runs the real crowsnest-collector binary with only
// procwatch enabled (default settings otherwise: network sockets on, spool
// on) against an embedded JetStream, and reads the collector process's own
// CPU (utime+stime from /proc/<pid>/stat) and memory (VmRSS, VmHWM) — the
// server and the spawner live in the test process and are not counted. Each
// mode is measured idle, then while execs are launched at a target rate
// (CROWSNEST_BENCH_EXECS, default 1000/s); it reports the achieved rate and
// the share of the spawned processes whose exec event reached the raw stream.
// Phases last CROWSNEST_BENCH_PHASE (default 20s). A run takes minutes, so
// it runs only when CROWSNEST_BENCH_SIDECAR=1 (`make bench-procwatch`), alone
// and once:
//
//	cd collectors && CROWSNEST_BENCH_SIDECAR=1 go test -run '^$' -bench SidecarCost -benchtime 1x ./procwatch/
func BenchmarkSidecarCost(b *testing.B) {
	if os.Getenv("CROWSNEST_BENCH_SIDECAR") != "1" {
		b.Skip("minutes long: set CROWSNEST_BENCH_SIDECAR=1 or run make bench-procwatch")
	}
	phase := envDuration(b, "CROWSNEST_BENCH_PHASE", 20*time.Second)
	rate := envInt(b, "CROWSNEST_BENCH_EXECS", 1000)
	bin := filepath.Join(b.TempDir(), "crowsnest-collector")
	build := exec.Command("go", "build", "-o", bin, "../cmd/crowsnest-collector")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build crowsnest-collector: %v\n%s", err, out)
	}
	// The sidecar default (network sockets on), then without the socket scan
	// (which reads every process's fds each poll), then the connector.
	for _, mode := range []string{"poll=100ms", "poll=100ms,network=off", "netlink"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "netlink" {
				pc, err := openProcConnector()
				if err != nil {
					b.Skipf("process events connector unavailable: %v", err)
				}
				pc.close()
			}
			for range b.N {
				sidecarRun(b, bin, mode == "netlink", !strings.Contains(mode, "network=off"), phase, rate)
			}
		})
	}
}

func sidecarRun(b *testing.B, bin string, netlink, network bool, phase time.Duration, rate int) {
	bus := bustest.Start(b)
	dir := b.TempDir()
	cfgPath := filepath.Join(dir, "collector.yaml")
	cfg := fmt.Sprintf(`nats:
  url: %s
telemetry:
  listen: ""
data_dir: %s
collectors:
  replay:
    enabled: false
  procwatch:
    enabled: true
    poll_interval: 100ms
    netlink_proc_connector: %t
    network: %t
`, bus.Srv.ClientURL(), filepath.Join(dir, "data"), netlink, network)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Stderr = &stderr
	// The stage reads CROWSNEST_* variables as configuration: the
	// benchmark's own knobs must not reach it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CROWSNEST_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid

	// Ready once its capabilities event is stored; then a few seconds for
	// the first full scan of /proc to settle before "idle" starts.
	deadline := time.Now().Add(60 * time.Second)
	for countStream(b, bus.JS, bustest.StreamProcwatch, nil) == 0 {
		select {
		case err := <-exited:
			b.Fatalf("collector exited: %v\n%s", err, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("no procwatch event within 60s\n%s", stderr.String())
		}
	}
	time.Sleep(3 * time.Second)

	cpu0 := procCPU(b, pid)
	t0 := time.Now()
	time.Sleep(phase)
	idleCPU := (procCPU(b, pid) - cpu0).Seconds() * 1000 / time.Since(t0).Seconds()
	idleRSS := procStatusKB(b, pid, "VmRSS")
	// Idle is relative: the sidecar sees every process of its pid namespace,
	// here a shared machine's.
	hostProcs := countProcs(b)

	marker := strconv.FormatInt(time.Now().UnixNano(), 10)
	var pids sync.Map
	var spawned atomic.Int64
	cpu1 := procCPU(b, pid)
	t1 := time.Now()
	spawnAt(b, rate, phase, marker, &pids, &spawned)
	loadWall := time.Since(t1)
	loadCPU := (procCPU(b, pid) - cpu1).Seconds() * 1000 / loadWall.Seconds()
	loadRSS := procStatusKB(b, pid, "VmRSS")
	hwm := procStatusKB(b, pid, "VmHWM")

	// Events still in the pipe: the connector's and the last poll's. The
	// stream never stops growing on a shared machine (every process on the
	// host is seen), so wait a fixed time rather than for quiet.
	time.Sleep(3 * time.Second)
	seen := map[string]bool{}
	countStream(b, bus.JS, bustest.StreamProcwatch, func(data []byte) {
		r := gjson.ParseBytes(data)
		if r.Get("kind").Str != KindProcessExec {
			return
		}
		args := r.Get("process.args").Array()
		if len(args) == 3 && args[1].Str == marker {
			seen[args[2].Str] = true
			return
		}
		// The connector reports a process that exited before /proc was
		// read with its pid only.
		if len(args) == 0 {
			if i, ok := pids.Load(r.Get("process.pid").Int()); ok {
				seen[i.(string)] = true
			}
		}
	})
	n := spawned.Load()
	b.ReportMetric(idleCPU, "idle-cpu-ms/s")
	b.ReportMetric(float64(idleRSS)/1024, "idle-rss-MB")
	b.ReportMetric(float64(n)/loadWall.Seconds(), "execs/s")
	b.ReportMetric(loadCPU, "load-cpu-ms/s")
	b.ReportMetric(float64(loadRSS)/1024, "load-rss-MB")
	b.ReportMetric(float64(hwm)/1024, "hwm-MB")
	b.ReportMetric(100*float64(len(seen))/float64(n), "%seen")
	b.ReportMetric(float64(hostProcs), "procs")
	b.ReportMetric(0, "ns/op") // one op is a fixed-length run
}

// spawnAt launches `/bin/true marker i` at rate per second for d, from
// several goroutines (one fork+exec takes about a millisecond here), and
// remembers each pid.
func spawnAt(b *testing.B, rate int, d time.Duration, marker string, pids *sync.Map, spawned *atomic.Int64) {
	tick := time.Second / time.Duration(rate)
	end := time.Now().Add(d)
	tokens := make(chan int, 64)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Go(func() {
			for i := range tokens {
				id := strconv.Itoa(i)
				c := exec.Command("/bin/true", marker, id)
				if err := c.Start(); err != nil {
					failed.Store(err)
					continue
				}
				pids.Store(int64(c.Process.Pid), id)
				spawned.Add(1)
				_ = c.Wait()
			}
		})
	}
	// Paced by the clock, not by sleeps: a late tick sends what is due.
	start := time.Now()
	sent := 0
	for now := start; now.Before(end); now = time.Now() {
		due := int(now.Sub(start) / tick)
		for ; sent < due; sent++ {
			tokens <- sent
		}
		time.Sleep(time.Millisecond)
	}
	close(tokens)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatalf("spawn: %v", err)
	}
}

// countStream counts the messages stream holds, passing each one's data to
// f when f is set. The raw stream is a work queue, which refuses ordered
// consumers: a pull consumer reads it and acks (removes) each message, which
// is why this comes last.
func countStream(b *testing.B, js jetstream.JetStream, stream string, f func([]byte)) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if f == nil || info.State.Msgs == 0 {
		return int64(info.State.Msgs)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "bench-count", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000,
	})
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for n < int64(info.State.Msgs) {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			f(m.Data())
			if err := m.Ack(); err != nil {
				b.Fatal(err)
			}
			got++
		}
		if err := batch.Error(); err != nil && got == 0 {
			b.Fatalf("read %s: %v after %d of %d", stream, err, n, info.State.Msgs)
		}
		n += int64(got)
	}
	return n
}

// countProcs counts the processes in /proc.
func countProcs(b *testing.B) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	return n
}

// procCPU is the process's utime+stime from /proc/<pid>/stat.
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		b.Fatalf("/proc/%d/stat: no command end", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		b.Fatalf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	// utime and stime are fields 14 and 15 of stat(5): 12 and 13 here.
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: utime %q stime %q", pid, fields[11], fields[12])
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

// procStatusKB reads a kB field of /proc/<pid>/status.
func procStatusKB(b *testing.B, pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("%s %q: %v", field, v, err)
			}
			return kb
		}
	}
	b.Fatalf("/proc/%d/status: no %s", pid, field)
	return 0
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
