//go:build !unix

package golden

import "time"

// cpuTime is unknown here; Bench then reports wall-clock figures only.
func cpuTime() time.Duration { return 0 }
