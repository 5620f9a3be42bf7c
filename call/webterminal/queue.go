package webterminal

import (
	"context"
	"sync"

	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
)

// outbox is an unbounded queue of messages for one stream, drained by the
// stream's single writer goroutine (gRPC allows one sender per stream). push
// never blocks, so it may be called with locks held.
type outbox struct {
	mu   sync.Mutex
	q    []*pb.WebTerminalMessage
	wake chan struct{}
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) push(m *pb.WebTerminalMessage) {
	o.mu.Lock()
	o.q = append(o.q, m)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run sends queued messages with send until ctx ends or send fails.
func (o *outbox) run(ctx context.Context, send func(*pb.WebTerminalMessage) error) error {
	for {
		o.mu.Lock()
		q := o.q
		o.q = nil
		o.mu.Unlock()
		for _, m := range q {
			if err := send(m); err != nil {
				return err
			}
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-o.wake:
		}
	}
}
