//go:build !linux

package detect

import "time"

// cpuClock (the thread CPU time) is not read here; the latency benchmark skips.
func cpuClock() time.Duration { return 0 }
