// Package goid reads the current goroutine's id. It is used only to let an
// object's Close be called from its own callback goroutine without waiting for
// itself; nothing else may depend on goroutine identity.
package goid

import (
	"bytes"
	"runtime"
	"strconv"
)

// Current returns the id of the calling goroutine (about 1 µs: it formats a
// one-frame stack trace).
func Current() uint64 {
	var b [64]byte
	s := b[:runtime.Stack(b[:], false)]
	s = bytes.TrimPrefix(s, []byte("goroutine "))
	if i := bytes.IndexByte(s, ' '); i > 0 {
		s = s[:i]
	}
	id, _ := strconv.ParseUint(string(s), 10, 64)
	return id
}
