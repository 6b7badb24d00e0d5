package procwatch

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
)

// BenchmarkExecCoverage spawns short-lived processes (sleep for the given
// lifetime) and reports the share of them the poller saw, per poll
// interval, and the collector's CPU time per second of wall clock while
// doing so (whole test process: an upper bound).
//
//	go test -run XXX -bench ExecCoverage -benchtime 200x ./collectors/procwatch/
func BenchmarkExecCoverage(b *testing.B) {
	for _, mode := range []string{"poll", "netlink"} {
		for _, interval := range []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond} {
			for _, life := range []string{"0", "0.02", "0.1"} {
				if mode == "netlink" && (interval != 100*time.Millisecond || life != "0") {
					continue // one row: the hardest case
				}
				b.Run(fmt.Sprintf("%s/poll=%s/life=%ss", mode, interval, life), func(b *testing.B) {
					if mode == "netlink" {
						pc, err := openProcConnector()
						if err != nil {
							b.Skipf("process events connector unavailable: %v", err)
						}
						pc.close()
					}
					bus := bustest.Start(b)
					cfg := NewDefaultConfig()
					cfg.PollInterval = interval
					cfg.Network = false
					cfg.NetlinkProcConnector = mode == "netlink"
					c, err := New(cfg, Settings{Publisher: bus.Publisher(b, bustest.PublishConfig())})
					if err != nil {
						b.Fatal(err)
					}
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan error, 1)
					go func() { done <- c.Run(ctx) }()
					time.Sleep(3 * interval)
					marker := fmt.Sprintf("%d", time.Now().UnixNano())
					var ru0, ru1 syscall.Rusage
					_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
					pids := map[int64]bool{}
					start := time.Now()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						cmd := exec.Command("sh", "-c", "sleep "+life, marker, fmt.Sprint(i))
						if err := cmd.Run(); err != nil {
							b.Fatal(err)
						}
						pids[int64(cmd.Process.Pid)] = true
					}
					wall := time.Since(start)
					_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
					time.Sleep(3*interval + 200*time.Millisecond)
					cancel()
					<-done
					seen := map[string]bool{}
					for _, m := range bus.Messages(b, bustest.StreamProcwatch) {
						r := gjson.ParseBytes(m.Data)
						args := r.Get("process.args").Array()
						if r.Get("kind").Str == KindProcessExec && len(args) == 5 && args[3].Str == marker {
							seen[args[4].Str] = true
						}
						if r.Get("kind").Str == KindProcessExec && r.Get("seen").Str == "netlink" && len(args) == 0 && pids[r.Get("process.pid").Int()] {
							seen["pid"+r.Get("process.pid").String()] = true // exited before /proc was read: pid only
						}
					}
					cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
					b.ReportMetric(100*float64(len(seen))/float64(b.N), "%seen")
					b.ReportMetric(float64(b.N)/wall.Seconds(), "execs/s")
					b.ReportMetric(cpu.Seconds()/wall.Seconds()*1000, "cpu-ms/s")
				})
			}
		}
	}
}
