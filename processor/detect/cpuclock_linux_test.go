package detect

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID (linux/time.h).
const clockThreadCPUTime = 3

// cpuClock is the calling thread's CPU time in nanoseconds: the latency
// benchmark's clock (its goroutine locked to the thread), which a machine
// shared with other work does not stretch. Getrusage has only
// microseconds and counts every thread.
func cpuClock() time.Duration {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}
