//go:build race

package sigma

// raceEnabled: the race detector changes what escapes, so allocation counts differ.
const raceEnabled = true
