package flow

import (
	"sync"
	"time"
)

// deadline is a settable read deadline: wait() returns a channel that is closed
// when the deadline passes. Setting a new deadline replaces the channel.
type deadline struct {
	mu    sync.Mutex
	t     time.Time
	gen   uint64 // bumped by every set, so that a late timer of an old deadline does nothing
	timer *time.Timer
	ch    chan struct{}
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.t = t
	d.gen++
	select {
	case <-d.ch: // expired: a fresh channel for the new deadline
		d.ch = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		return
	}
	ch, gen := d.ch, d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
	})
}

// when returns the deadline; zero means none.
func (d *deadline) when() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.t
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
