//go:build race

package srtp_test

// raceEnabled reports whether the race detector is on; it allocates, so
// allocation counts are not meaningful then.
const raceEnabled = true
