package srtp

// RecoveredPanics returns how many pion/srtp panics have been recovered, so
// that tests in package srtp_test can assert that none happened.
func RecoveredPanics() uint64 { return recoveredPanics.Load() }
