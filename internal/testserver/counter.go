package testserver

import (
	"context"
	"sync"
)

// counter is a count that can be waited on.
type counter struct {
	mu      sync.Mutex
	n       int
	changed chan struct{} // closed and replaced on every increment
}

func (c *counter) add() {
	c.mu.Lock()
	c.n++
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
	c.mu.Unlock()
}

func (c *counter) value() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// wait returns when the count is at least n, or with ctx's error.
func (c *counter) wait(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if c.n >= n {
			c.mu.Unlock()
			return nil
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
