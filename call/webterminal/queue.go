package webterminal

import (
	"context"
	"github.com/reflow-go/reflow/internal/goid"
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

// serial runs functions one at a time, in order, on a goroutine it starts when
// work is queued and that ends when the queue is empty (Handler calls).
type serial struct {
	mu      sync.Mutex
	q       []func()
	running bool
	closed  bool
	runner  uint64
	wg      *sync.WaitGroup // nil: own
	own     sync.WaitGroup
}

func (s *serial) group() *sync.WaitGroup {
	if s.wg == nil {
		return &s.own
	}
	return s.wg
}

func (s *serial) push(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.q = append(s.q, f)
	if !s.running {
		s.running = true
		s.group().Add(1)
		go s.run()
	}
}

func (s *serial) run() {
	defer s.group().Done()
	id := goid.Current()
	for {
		s.mu.Lock()
		s.runner = id
		if len(s.q) == 0 {
			s.q = nil
			s.running = false
			s.runner = 0
			s.mu.Unlock()
			return
		}
		f := s.q[0]
		s.q[0] = nil
		s.q = s.q[1:]
		s.mu.Unlock()
		f()
	}
}

// close refuses new work and waits until the queued work is done, unless
// called from it.
func (s *serial) close() {
	s.mu.Lock()
	s.closed = true
	inside := s.running && s.runner == goid.Current()
	s.mu.Unlock()
	if !inside {
		s.group().Wait()
	}
}
