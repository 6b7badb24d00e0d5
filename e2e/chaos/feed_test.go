package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

var getenv = os.Getenv

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
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("append to %s: %w", dst, err)
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
