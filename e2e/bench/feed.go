package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Feeder hands generated records to the collector the way their sources
// do: audit and Tetragon lines appended to the files it tails, Falco alerts
// POSTed to its receiver as JSON lines (answered 200 once every alert is
// acknowledged by JetStream; 429/503 are retried like falcosidekick does).
type Feeder struct {
	mix      *Mix
	audit    *os.File
	tetragon *os.File
	falcoURL string
	client   *http.Client

	// Generated counts records handed over: written to a file, or in a POST
	// the receiver accepted.
	Generated atomic.Int64

	posts  sync.WaitGroup
	slots  chan struct{} // concurrent POSTs
	errMu  sync.Mutex
	err    error
	tracks func(r *Record, at time.Time)
}

// NewFeeder appends to the two files (created when absent) and posts to
// falcoURL.
func NewFeeder(mix *Mix, auditPath, tetragonPath, falcoURL string) (*Feeder, error) {
	a, err := os.OpenFile(auditPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("feeder: %w", err)
	}
	t, err := os.OpenFile(tetragonPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("feeder: %w", err)
	}
	return &Feeder{mix: mix, audit: a, tetragon: t, falcoURL: falcoURL,
		client: &http.Client{Timeout: time.Minute}, slots: make(chan struct{}, 4)}, nil
}

// Close waits for the POSTs in flight and closes the files.
func (f *Feeder) Close() error {
	f.posts.Wait()
	return errors.Join(f.audit.Close(), f.tetragon.Close(), f.Err())
}

// Err is the first error a POST met.
func (f *Feeder) Err() error {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return f.err
}

// Track calls fn with every record from now on and the moment it was handed
// over (after its write returned; when its POST started); nil stops.
func (f *Feeder) Track(fn func(r *Record, at time.Time)) { f.tracks = fn }

// batch generates n records and hands them over: one write per file, Falco
// alerts in POSTs of at most postMax, at most four in flight (a full set of
// slots blocks, so a slow receiver slows the feed, as it would a sender).
func (f *Feeder) batch(ctx context.Context, n, postMax int) error {
	now := time.Now()
	var a, t bytes.Buffer
	var recs []Record
	var falco [][]byte
	var falcoRecs []Record
	for range n {
		r, err := f.mix.Next(now)
		if err != nil {
			return err
		}
		switch r.Kind {
		case Audit:
			a.Write(r.Line)
			a.WriteByte('\n')
		case Tetragon:
			t.Write(r.Line)
			t.WriteByte('\n')
		case Falco:
			falco = append(falco, r.Line)
			falcoRecs = append(falcoRecs, r)
			continue
		}
		if f.tracks != nil {
			recs = append(recs, r)
		}
	}
	if _, err := f.audit.Write(a.Bytes()); err != nil {
		return fmt.Errorf("feed audit log: %w", err)
	}
	if _, err := f.tetragon.Write(t.Bytes()); err != nil {
		return fmt.Errorf("feed tetragon log: %w", err)
	}
	written := time.Now()
	f.Generated.Add(int64(n - len(falco)))
	for i := range recs {
		f.tracks(&recs[i], written)
	}
	for lo := 0; lo < len(falco); lo += postMax {
		hi := min(lo+postMax, len(falco))
		select {
		case f.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		start := time.Now()
		if f.tracks != nil {
			for i := lo; i < hi; i++ {
				f.tracks(&falcoRecs[i], start)
			}
		}
		body := bytes.Join(falco[lo:hi], []byte{'\n'})
		f.posts.Add(1)
		go func(n int) {
			defer f.posts.Done()
			defer func() { <-f.slots }()
			if err := f.post(ctx, body); err != nil {
				f.errMu.Lock()
				if f.err == nil {
					f.err = err
				}
				f.errMu.Unlock()
				return
			}
			f.Generated.Add(int64(n))
		}(hi - lo)
	}
	return nil
}

func (f *Feeder) post(ctx context.Context, body []byte) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.falcoURL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := f.client.Do(req)
		if err != nil {
			return fmt.Errorf("post falco alerts: %w", err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 2:
			return nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		default:
			return fmt.Errorf("falco receiver refused a batch: %s: %s", resp.Status, bytes.TrimSpace(msg))
		}
	}
}

// Burst hands n records over as fast as the collector takes them.
func (f *Feeder) Burst(ctx context.Context, n int) error {
	for n > 0 {
		k := min(n, 5000)
		if err := f.batch(ctx, k, 500); err != nil {
			return err
		}
		n -= k
	}
	f.posts.Wait()
	return f.Err()
}

// Paced hands records over at rate per second for d, in 10 ms slices, and
// returns how many it generated. A slice that falls behind (a blocked
// POST, a descheduled feeder) is made up in the next, so the count follows
// the schedule; whether the collector keeps up shows in its backlog.
func (f *Feeder) Paced(ctx context.Context, rate int, d time.Duration) (int, error) {
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		el := time.Since(start)
		if el >= d {
			break
		}
		due := int(float64(rate)*el.Seconds()) - sent
		if due > 0 {
			if err := f.batch(ctx, due, 200); err != nil {
				return sent, err
			}
			sent += due
		}
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-tick.C:
		}
	}
	return sent, f.Err()
}
