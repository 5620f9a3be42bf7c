package goid

import "testing"

func TestCurrentDiffersAcrossGoroutines(t *testing.T) {
	here := Current()
	if here == 0 || Current() != here {
		t.Fatalf("unstable id %d", here)
	}
	other := make(chan uint64)
	go func() { other <- Current() }()
	if id := <-other; id == here || id == 0 {
		t.Fatalf("another goroutine got id %d, this one %d", id, here)
	}
}
