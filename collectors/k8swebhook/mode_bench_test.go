package k8swebhook

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWebhookModes models the API server's two audit webhook modes
// against this receiver over TLS with client certificates:
//   - blocking (--audit-webhook-mode=blocking): every audited request waits
//     for a POST of its own event, so the figure that matters is the
//     latency of a one-event EventList, which each API call pays;
//   - batch (the default): events are buffered and sent up to
//     --audit-webhook-batch-max-size (400) at a time, asynchronously; what
//     matters is how long a batch takes and the events/s.
//
// Reports p50/p99 per POST and events/s with 4 concurrent senders.
// docs/webhook.md turns these into the trade-off.
func BenchmarkWebhookModes(b *testing.B) {
	for _, size := range []int{1, 400} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			f := start(b, func(c *Config) { c.Server.RequestTimeout = 30 * time.Second })
			c := f.client(b)
			var (
				n    atomic.Int64
				mu   sync.Mutex
				lats []time.Duration
			)
			b.SetParallelism(4)
			b.ResetTimer()
			began := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					i := int(n.Add(1))
					body := eventList(i*size, (i+1)*size)
					t0 := time.Now()
					if code, _, msg := post(b, c, f.rcv.URL(), body); code != http.StatusOK {
						b.Errorf("POST = %d %s", code, msg)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(began)
			b.StopTimer()
			if len(lats) == 0 {
				return
			}
			slices.Sort(lats)
			b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(b.N*size)/elapsed.Seconds(), "events/s")
		})
	}
}
