package notify

import (
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
)

func TestMain(m *testing.M) { leak.Main(m) }

func TestOrder(t *testing.T) {
	leak.Check(t)
	var q Queue
	var got []int
	fin := make(chan struct{})
	for i := range 100 {
		q.Post(func() {
			got = append(got, i)
			if i == 99 {
				close(fin)
			}
		})
	}
	<-fin
	q.Close()
	<-q.Done()
	for i, v := range got {
		if v != i {
			t.Fatalf("call %d ran as %d", v, i)
		}
	}
	if len(got) != 100 {
		t.Fatalf("%d calls, want 100", len(got))
	}
}

// A call that closes its own queue (a handler closing its stream) returns, and
// Done is closed after it.
func TestCloseFromCall(t *testing.T) {
	leak.Check(t)
	var q Queue
	ran := make(chan struct{})
	q.Post(func() {
		q.Close()
		q.Close()
		close(ran)
	})
	q.Post(func() { t.Error("a call queued behind Close ran") })
	<-ran
	<-q.Done()
	if q.Post(func() {}) {
		t.Fatal("Post after Close accepted")
	}
}

// Close from another goroutine while a call blocks: Close returns at once, Done
// waits for the call, no later call starts.
func TestCloseWhileBlocked(t *testing.T) {
	leak.Check(t)
	var q Queue
	release := make(chan struct{})
	entered := make(chan struct{})
	q.Post(func() { close(entered); <-release })
	q.Post(func() { t.Error("pending call ran after Close") })
	<-entered
	q.Close()
	select {
	case <-q.Done():
		t.Fatal("Done closed while a call runs")
	default:
	}
	close(release)
	<-q.Done()
}

// A blocked call bounds memory: beyond Limit posts are dropped and counted,
// and Post never blocks.
func TestBounded(t *testing.T) {
	leak.Check(t)
	q := Queue{Limit: 8}
	release := make(chan struct{})
	entered := make(chan struct{})
	q.Post(func() { close(entered); <-release })
	<-entered
	accepted := 0
	for range 100 {
		if q.Post(func() {}) {
			accepted++
		}
	}
	if accepted != 8 || q.Dropped() != 92 {
		t.Fatalf("accepted %d dropped %d, want 8 and 92", accepted, q.Dropped())
	}
	close(release)
	q.Close()
	<-q.Done()
}

func TestConcurrentPostClose(t *testing.T) {
	leak.Check(t)
	for range 200 {
		var q Queue
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 20 {
					q.Post(func() { q.Closed() })
				}
			})
		}
		wg.Go(q.Close)
		wg.Wait()
		q.Close()
		select {
		case <-q.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed")
		}
	}
}
