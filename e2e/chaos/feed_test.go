package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func getenv(key string) string { return os.Getenv(key) }

// counter is a line count shared between the feeding goroutine and the test.
type counter struct{ n atomic.Int64 }

func (c *counter) add(n int) { c.n.Add(int64(n)) }
func (c *counter) get() int  { return int(c.n.Load()) }

func touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	return f.Close()
}

// appendAtRate copies the lines of src to the end of dst at about rate lines
// per second, in tenth-of-a-second slices, as a live audit log grows.
func appendAtRate(ctx context.Context, src, dst string, rate int, written *counter) error {
	return appendAtRateWatched(ctx, src, dst, rate, written, nil)
}

// feedWatcher sees what appendAtRateWatched writes: each line of a slice,
// then the moment the slice reached the file.
type feedWatcher interface {
	line([]byte)
	flushed(at time.Time)
}

// appendAtRateWatched is appendAtRate telling watch (when not nil) what it
// writes and when.
func appendAtRateWatched(ctx context.Context, src, dst string, rate int, written *counter, watch feedWatcher) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer out.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	per := max(rate/10, 1)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	w := bufio.NewWriter(out)
	for {
		n := 0
		for n < per && sc.Scan() {
			w.Write(sc.Bytes())
			w.WriteByte('\n')
			n++
			if watch != nil {
				watch.line(sc.Bytes())
			}
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("append to %s: %w", dst, err)
		}
		if watch != nil {
			watch.flushed(time.Now())
		}
		written.add(n)
		if n < per {
			return sc.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// postStats counts the webhook's answers.
type postStats struct {
	ok, retried atomic.Int64
	mu          sync.Mutex
	byStatus    map[string]int
}

func (p *postStats) note(status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byStatus == nil {
		p.byStatus = map[string]int{}
	}
	p.byStatus[status]++
}

func (p *postStats) statuses() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.byStatus))
	for k := range p.byStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s ×%d", k, p.byStatus[k])
	}
	return b.String()
}

// postAtRate sends the lines of src to the audit webhook at url as EventList
// batches of batch items, about rate items per second, and retries a batch
// until it is accepted (2xx), as the API server's webhook backend does.
func postAtRate(ctx context.Context, src, url, token string, rate, batch int, written *counter, stats *postStats) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	client := &http.Client{Timeout: 30 * time.Second}
	interval := time.Duration(float64(time.Second) * float64(batch) / float64(rate))
	next := time.Now()
	for lo := 0; lo < len(lines); lo += batch {
		hi := min(lo+batch, len(lines))
		body := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + strings.Join(lines[lo:hi], ",") + `]}`
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				stats.note(resp.Status)
				if resp.StatusCode/100 == 2 {
					stats.ok.Add(1)
					break
				}
				if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode/100 != 5 {
					return fmt.Errorf("webhook refused batch %d..%d for good: %s", lo, hi, resp.Status)
				}
			} else {
				stats.note("error")
			}
			stats.retried.Add(1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		written.add(hi - lo)
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
	}
	return nil
}
