//go:build !unix

package pipeline_test

import "time"

// cpuTime is not measured here; the CPU figures then read 0.
func cpuTime() time.Duration { return 0 }
