package sink

import (
	"math/rand/v2"
	"time"
)

// backoff is the delay before attempt n+1 (n >= 1): initial·2^(n-1) capped at
// max, then jittered to a uniformly random value in [d/2, d] ("equal
// jitter"), so that runners failing together do not retry together yet never
// retry sooner than half the nominal delay.
func backoff(n int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
