package k8saudit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
)

// BenchmarkTail reads a file of b.N audit events (~290 B each) into an
// embedded JetStream, every line acknowledged before the checkpoint moves:
// MB/s and events/s of the whole tail, publisher included.
//
//	go test -run xxx -bench BenchmarkTail -benchtime 50000x ./collectors/k8saudit/
func BenchmarkTail(b *testing.B) {
	bus := bustest.Start(b)
	dir := b.TempDir()
	path := filepath.Join(dir, "audit.log")
	var sb strings.Builder
	for i := range b.N {
		sb.WriteString(auditLine(i))
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := NewDefaultConfig()
	cfg.Paths = []string{path}
	cfg.DataDir = b.TempDir()
	cfg.PollInterval = time.Millisecond
	pc := bustest.PublishConfig()
	pc.AckTimeout = 5 * time.Second
	tl, err := New(cfg, Settings{Publisher: bus.Publisher(b, pc)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.SetBytes(int64(sb.Len() / b.N))
	b.ResetTimer()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	s, err := bus.JS.Stream(ctx, bustest.StreamK8sAudit)
	if err != nil {
		b.Fatal(err)
	}
	for {
		info, err := s.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs >= uint64(b.N) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
