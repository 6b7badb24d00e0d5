package harness

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports (the kernel's ABI fixes
// it regardless of CONFIG_HZ), so it is not read through sysconf (cgo).
const clockTicks = 100

// ProcUsage is what the kernel accounts for one process at one moment.
type ProcUsage struct {
	CPU     time.Duration // utime+stime so far
	RSS     int64         // VmRSS, bytes
	PeakRSS int64         // VmHWM (the high-water mark of RSS since start), bytes
}

// ReadProcUsage reads pid's CPU time from /proc/<pid>/stat and its resident
// set from /proc/<pid>/status.
func ReadProcUsage(pid int) (ProcUsage, error) {
	var u ProcUsage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("proc usage: %w", err)
	}
	if u.CPU, err = parseStatCPU(stat); err != nil {
		return u, fmt.Errorf("proc usage of %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("proc usage: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			u.RSS, err = parseKB(line)
		case strings.HasPrefix(line, "VmHWM:"):
			u.PeakRSS, err = parseKB(line)
		}
		if err != nil {
			return u, fmt.Errorf("proc usage of %d: %w", pid, err)
		}
	}
	return u, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15) of a /proc/<pid>/stat
// line. The command name (field 2) is in parentheses and may hold spaces or
// parentheses itself, so the fields are counted after its last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %.60q: no command name", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state is field 3, so utime (14) is f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat %.60q: %d fields after the name", stat, len(f))
	}
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat utime: %w", err)
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat stime: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

func parseKB(line string) (int64, error) {
	f := strings.Fields(line)
	if len(f) != 3 || f[2] != "kB" {
		return 0, fmt.Errorf("status line %q: want \"<key>: <n> kB\"", strings.TrimSpace(line))
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("status line %q: %w", strings.TrimSpace(line), err)
	}
	return n * 1024, nil
}
