package webterminal

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// CoreConfig describes a Core. Zero fields take the documented defaults.
type CoreConfig struct {
	// Identify returns the msisdn of the terminal opening a stream; an error or
	// an empty msisdn refuses the stream (codes.Unauthenticated). Nil means
	// MSISDNFromContext. With mutual TLS, a function reading the client
	// certificate (peer.FromContext) is the sound choice.
	Identify func(ctx context.Context) (string, error)
	// OnMessage, when set, is called for every message the core receives (in
	// true) or sends, from the stream's goroutines; it must not block.
	OnMessage func(msisdn string, mode Mode, in bool, m *pb.WebTerminalMessage)
	// OnError, when set, is called for every message the core rejects (a
	// MultiPipe message without a UUID call_id: ErrInvalidCallID). The stream
	// goes on.
	OnError func(msisdn string, err error)
	// Logger receives log records; nil discards them.
	Logger *slog.Logger
}

// Core is a small core (server side of the API), good for tests and examples:
// it routes calls between registered terminals by msisdn, passing SDP
// through; it sends InCall/Idle to the other terminals of a call's parties;
// it moves a call to a terminal that takes it over and "to the phone" on
// Action{ToPhone} (the phone is not modelled: the leg just leaves its
// terminal); it can renegotiate a call (Renegotiate) and terminate a party's
// media on a call core agent of its own (AttachMedia). Register it on a
// grpc.Server with pb.RegisterWebTerminalServer. All methods are safe for
// concurrent use.
type Core struct {
	pb.UnimplementedWebTerminalServer
	cfg CoreConfig
	log *slog.Logger
	wg  sync.WaitGroup

	stop chan struct{} // closed by Close

	mu     sync.Mutex
	regs   []*registration
	calls  map[string]*coreCall
	closed bool
}

// registration is one open stream of a terminal.
type registration struct {
	msisdn string
	mode   Mode
	out    *outbox
	calls  map[string]*coreCall // at most one on Pipe
	ctx    context.Context
	cancel context.CancelCauseFunc
}

type leg struct {
	msisdn string
	reg    *registration // nil: on the phone
	waiter chan string   // Renegotiate waiting for this leg's Answer
}

type coreCall struct {
	id        string
	legs      [2]*leg // caller, callee
	active    bool
	observers map[*registration]string // got InCall for this call: msisdn
	done      chan struct{}
}

// CallInfo describes a call the core routes.
type CallInfo struct {
	// ID is the call's UUID.
	ID string
	// Caller and Callee are the parties' msisdns.
	Caller, Callee string
	// Active is true once the callee answered.
	Active bool
	// OnPhone lists the parties whose leg is on the phone (no terminal).
	OnPhone []string
}

// NewCore makes a core.
func NewCore(cfg CoreConfig) (*Core, error) {
	if cfg.Identify == nil {
		cfg.Identify = func(ctx context.Context) (string, error) { return MSISDNFromContext(ctx), nil }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Core{cfg: cfg, log: log, calls: map[string]*coreCall{}, stop: make(chan struct{})}, nil
}

// Pipe serves a terminal registering for one call at a time.
func (c *Core) Pipe(st grpc.BidiStreamingServer[pb.WebTerminalMessage, pb.WebTerminalMessage]) error {
	return c.serve(st, Pipe)
}

// MultiPipe serves a terminal registering for many calls.
func (c *Core) MultiPipe(st grpc.BidiStreamingServer[pb.WebTerminalMessage, pb.WebTerminalMessage]) error {
	return c.serve(st, MultiPipe)
}

func (c *Core) serve(st grpc.BidiStreamingServer[pb.WebTerminalMessage, pb.WebTerminalMessage], mode Mode) error {
	msisdn, err := c.cfg.Identify(st.Context())
	if err != nil || msisdn == "" {
		return status.Errorf(codes.Unauthenticated, "webterminal: terminal not identified (metadata %s): %v", MetadataMSISDN, err)
	}
	ctx, cancel := context.WithCancelCause(st.Context())
	defer cancel(nil)
	r := &registration{msisdn: msisdn, mode: mode, out: newOutbox(), calls: map[string]*coreCall{}, ctx: ctx, cancel: cancel}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return status.Error(codes.Unavailable, "webterminal: core closed")
	}
	c.wg.Add(2) // this handler and its receiver
	defer c.wg.Done()
	c.regs = append(c.regs, r)
	c.mu.Unlock()
	if err := st.SendHeader(metadata.Pairs(metadataRegistered, mode.String())); err != nil {
		c.wg.Done()
		c.unregister(r)
		return err
	}
	c.log.Info("terminal registered", "msisdn", msisdn, "mode", mode.String())
	c.mu.Lock()
	for _, call := range c.calls { // tell a newcomer about its msisdn's calls
		if call.active {
			for _, l := range call.legs {
				if l.msisdn == msisdn {
					c.observe(call, r, l.msisdn)
				}
			}
		}
	}
	c.mu.Unlock()
	recvErr := make(chan error, 1)
	go func() {
		defer c.wg.Done()
		for {
			m, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if c.cfg.OnMessage != nil {
				c.cfg.OnMessage(msisdn, mode, true, m)
			}
			c.handle(r, m)
		}
	}()
	sendErr := make(chan error, 1)
	go func() {
		sendErr <- r.out.run(ctx, func(m *pb.WebTerminalMessage) error {
			if c.cfg.OnMessage != nil {
				c.cfg.OnMessage(msisdn, mode, false, m)
			}
			return st.Send(m)
		})
	}()
	var result error
	select {
	case err = <-recvErr:
		c.log.Info("terminal stream ended", "msisdn", msisdn, "err", err)
	case <-ctx.Done():
		if cause := context.Cause(ctx); cause != ctx.Err() {
			result = cause
		}
	}
	cancel(nil)
	<-sendErr
	c.unregister(r)
	return result
}

// unregister removes r and ends its calls (Bye to the other party).
func (c *Core) unregister(r *registration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.regs {
		if x == r {
			c.regs = append(c.regs[:i:i], c.regs[i+1:]...)
			break
		}
	}
	for _, call := range r.calls {
		c.endCall(call, r)
	}
	for _, call := range c.calls {
		delete(call.observers, r)
	}
}

// handle routes one message from r.
func (c *Core) handle(r *registration, m *pb.WebTerminalMessage) {
	id := m.GetCallId()
	if r.mode == MultiPipe && !validCallID(id) {
		err := fmt.Errorf("%w: %s message from %s with call_id %q rejected", ErrInvalidCallID, Kind(m), r.msisdn, id)
		c.log.Warn("message rejected", "err", err)
		if c.cfg.OnError != nil {
			c.cfg.OnError(r.msisdn, err)
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.ctx.Err() != nil {
		return // unregistered
	}
	if x, ok := m.GetMessage().(*pb.WebTerminalMessage_Offer); ok {
		c.onOffer(r, id, x.Offer)
		return
	}
	call := c.find(r, id)
	if call == nil {
		c.log.Debug("message for an unknown call ignored", "msisdn", r.msisdn, "kind", Kind(m), "call_id", id)
		return
	}
	me, other := call.legsOf(r)
	switch x := m.GetMessage().(type) {
	case *pb.WebTerminalMessage_Answer:
		if me.waiter != nil {
			me.waiter <- x.Answer.GetSdp()
			me.waiter = nil
			return
		}
		c.sendTo(other.reg, call.id, answerMsg(x.Answer.GetSdp()))
		if !call.active {
			call.active = true
			for _, l := range call.legs {
				for _, o := range c.regs {
					if o.msisdn == l.msisdn && o != call.legs[0].reg && o != call.legs[1].reg {
						c.observe(call, o, l.msisdn)
					}
				}
			}
		}
	case *pb.WebTerminalMessage_Ringing:
		if !call.active {
			c.sendTo(other.reg, call.id, &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Ringing{Ringing: &pb.Ringing{}}})
		}
	case *pb.WebTerminalMessage_Bye:
		c.endCall(call, r)
	case *pb.WebTerminalMessage_Action:
		if x.Action.GetToPhone() != nil && call.active {
			me.reg = nil
			delete(r.calls, call.id)
			c.observe(call, r, me.msisdn)
		}
	}
}

// find returns r's call named id (on Pipe: r's one call).
func (c *Core) find(r *registration, id string) *coreCall {
	if r.mode == MultiPipe {
		return r.calls[id]
	}
	for _, call := range r.calls {
		return call
	}
	return nil
}

func (call *coreCall) legsOf(r *registration) (me, other *leg) {
	if call.legs[0].reg == r {
		return call.legs[0], call.legs[1]
	}
	return call.legs[1], call.legs[0]
}

// onOffer: renegotiation from a terminal, takeover of an observed call, or a
// new call.
func (c *Core) onOffer(r *registration, id string, o *pb.Offer) {
	offer := func(msisdn string) *pb.WebTerminalMessage {
		return &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Offer{Offer: &pb.Offer{Sdp: o.GetSdp(), Msisdn: msisdn}}}
	}
	bye := func() { c.sendTo(r, id, &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Bye{Bye: &pb.Bye{}}}) }
	if call := c.find(r, id); call != nil { // renegotiation: pass it on
		me, other := call.legsOf(r)
		c.sendTo(other.reg, call.id, offer(me.msisdn))
		return
	}
	if r.mode == Pipe && len(r.calls) > 0 {
		bye()
		return
	}
	if call, l := c.observed(r, id); call != nil { // takeover
		peer := call.legs[0]
		if peer == l {
			peer = call.legs[1]
		}
		if peer.reg == nil {
			bye()
			return
		}
		old := l.reg
		l.reg = r
		delete(call.observers, r)
		r.calls[call.id] = call
		if old != nil {
			delete(old.calls, call.id)
			c.sendTo(old, call.id, &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Bye{Bye: &pb.Bye{}}})
			c.observe(call, old, l.msisdn)
		}
		c.sendTo(peer.reg, call.id, offer(r.msisdn))
		return
	}
	if r.mode == MultiPipe && c.calls[id] != nil {
		bye()
		return
	}
	if r.mode == Pipe {
		id = uuid.NewString()
	}
	var callee *registration
	for _, x := range c.regs {
		if x.msisdn == o.GetMsisdn() && x != r && (x.mode == MultiPipe || len(x.calls) == 0) {
			callee = x
			break
		}
	}
	if callee == nil {
		c.log.Info("callee not registered or busy", "msisdn", o.GetMsisdn())
		bye()
		return
	}
	call := &coreCall{id: id, legs: [2]*leg{{msisdn: r.msisdn, reg: r}, {msisdn: o.GetMsisdn(), reg: callee}},
		observers: map[*registration]string{}, done: make(chan struct{})}
	c.calls[id] = call
	r.calls[id] = call
	callee.calls[id] = call
	c.sendTo(callee, id, offer(r.msisdn))
}

// observed returns the active call r may take over: named by id, or on Pipe
// the one active call of r's msisdn on another device.
func (c *Core) observed(r *registration, id string) (*coreCall, *leg) {
	match := func(call *coreCall) *leg {
		if !call.active {
			return nil
		}
		for _, l := range call.legs {
			if l.msisdn == r.msisdn && l.reg != r {
				return l
			}
		}
		return nil
	}
	if call := c.calls[id]; call != nil {
		if l := match(call); l != nil {
			return call, l
		}
		return nil, nil
	}
	if r.mode == Pipe {
		for _, call := range c.calls {
			if l := match(call); l != nil {
				return call, l
			}
		}
	}
	return nil, nil
}

// observe sends InCall for call to r and remembers to send Idle later.
func (c *Core) observe(call *coreCall, r *registration, msisdn string) {
	call.observers[r] = msisdn
	c.sendTo(r, call.id, &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_InCall{InCall: &pb.InCall{Msisdn: msisdn}}})
}

// endCall ends call because of r (Bye or lost stream; nil: the core): Bye to
// the other terminal legs, Idle to the observers.
func (c *Core) endCall(call *coreCall, r *registration) {
	if c.calls[call.id] != call {
		return
	}
	delete(c.calls, call.id)
	for _, l := range call.legs {
		if l.reg == nil {
			continue
		}
		delete(l.reg.calls, call.id)
		if l.reg != r {
			c.sendTo(l.reg, call.id, &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Bye{Bye: &pb.Bye{}}})
		}
	}
	for o, msisdn := range call.observers {
		id := call.id
		if o.mode == Pipe {
			id = "" // Pipe: Idle is about the msisdn
		}
		c.sendTo(o, id, &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Idle{Idle: &pb.Idle{Msisdn: msisdn}}})
	}
	close(call.done)
}

// sendTo queues m with call_id id on r (nil: the phone, nothing to send).
func (c *Core) sendTo(r *registration, id string, m *pb.WebTerminalMessage) {
	if r == nil {
		return
	}
	m.CallId = id
	r.out.push(m)
}

func answerMsg(sdp string) *pb.WebTerminalMessage {
	return &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Answer{Answer: &pb.Answer{Sdp: sdp}}}
}
