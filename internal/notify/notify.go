// Package notify is the one handler notifier of the module: every object that
// calls an application handler (a media stream, a call agent, a SIP endpoint, a
// web terminal) owns a Queue and posts its handler calls to it.
//
// The contract, shared by every package that uses it:
//
//   - Calls run one at a time, in the order they were posted, on a goroutine the
//     queue starts when work arrives and that ends when the queue is empty. No
//     lock of the poster is held during a call.
//   - Post never blocks and never runs the call itself, so it is safe on the
//     packet path and with locks held. The queue is bounded: beyond Limit
//     pending calls the newest are dropped and counted (Dropped), so a handler
//     that never returns costs bounded memory and never stalls media.
//   - Close stops the queue: pending calls are discarded, none starts after
//     Close returns. Close never waits for a running call, so it is safe from
//     inside a call (a handler closing its own stream) and from any other
//     goroutine at the same time. Done is closed once the queue is closed and
//     the last call has returned: that is how an owner tells that its handler
//     is no longer running.
//
// There are no goroutine IDs: an owner's Close releases its own resources and
// returns; whoever needs to know that the handler has finished waits on Done.
package notify

import (
	"sync"
	"sync/atomic"
)

// DefaultLimit is the number of pending calls a Queue holds when Limit is zero.
const DefaultLimit = 1024

// Queue runs posted functions one at a time, in order. The zero Queue is ready
// to use with DefaultLimit.
type Queue struct {
	// Limit bounds the pending calls; zero means DefaultLimit. Set it before
	// the first Post.
	Limit int

	mu      sync.Mutex
	pending []func()
	running bool
	closed  bool
	done    chan struct{}
	dropped atomic.Uint64
}

func (q *Queue) doneLocked() chan struct{} {
	if q.done == nil {
		q.done = make(chan struct{})
	}
	return q.done
}

// Post queues fn. It reports false when the queue is closed or full (fn is
// then dropped; a full queue counts it in Dropped).
func (q *Queue) Post(fn func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if len(q.pending) >= limit {
		q.dropped.Add(1)
		return false
	}
	q.pending = append(q.pending, fn)
	if !q.running {
		q.running = true
		go q.run()
	}
	return true
}

func (q *Queue) run() {
	for {
		q.mu.Lock()
		if q.closed || len(q.pending) == 0 {
			q.pending = nil
			q.running = false
			if q.closed {
				close(q.doneLocked())
			}
			q.mu.Unlock()
			return
		}
		fn := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		q.mu.Unlock()
		fn()
	}
}

// Close discards pending calls and refuses new ones. It does not wait for a
// running call (see Done) and is idempotent.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	q.pending = nil
	if !q.running {
		close(q.doneLocked())
	}
}

// Closed reports whether Close has been called.
func (q *Queue) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Done is closed once the queue is closed and no call is running.
func (q *Queue) Done() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.doneLocked()
}

// Dropped counts the calls dropped because the queue was full.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }
