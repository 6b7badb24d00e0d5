//go:build unix

package detect

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) the process has used, GC and all:
// events per CPU-second stays meaningful on a machine shared with other
// work, where wall-clock ns/op does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
