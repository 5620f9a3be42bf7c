package webterminal

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/reflow-go/reflow/call"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
)

// Renegotiate sends an Offer with sdp on the active call callID to the
// terminal of party msisdn and returns that terminal's Answer. The other
// party is not involved: the core speaks for it (a media server moving the
// call, for instance).
func (c *Core) Renegotiate(ctx context.Context, callID, msisdn, sdp string) (string, error) {
	c.mu.Lock()
	call := c.calls[callID]
	if call == nil {
		c.mu.Unlock()
		return "", fmt.Errorf("%w: %s", ErrUnknownCall, callID)
	}
	var me, other *leg
	for i, l := range call.legs {
		if l.msisdn == msisdn && l.reg != nil {
			me, other = l, call.legs[1-i]
			break
		}
	}
	switch {
	case me == nil:
		c.mu.Unlock()
		return "", fmt.Errorf("%w: %s has no terminal in call %s", ErrUnknownCall, msisdn, callID)
	case !call.active || me.waiter != nil:
		c.mu.Unlock()
		return "", fmt.Errorf("%w: call %s not active or already renegotiating", ErrState, callID)
	}
	ch := make(chan string, 1)
	me.waiter = ch
	c.sendTo(me.reg, call.id, &pb.WebTerminalMessage{Message: &pb.WebTerminalMessage_Offer{
		Offer: &pb.Offer{Sdp: sdp, Msisdn: other.msisdn}}})
	c.mu.Unlock()
	select {
	case ans := <-ch:
		return ans, nil
	case <-call.done:
		return "", fmt.Errorf("%w: call %s ended while renegotiating", ErrState, callID)
	case <-ctx.Done():
		c.mu.Lock()
		if me.waiter == ch {
			me.waiter = nil
		}
		c.mu.Unlock()
		return "", ctx.Err()
	}
}

// Hangup ends call callID from the core: Bye to its terminals, Idle to its
// observers.
func (c *Core) Hangup(callID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	call := c.calls[callID]
	if call == nil {
		return fmt.Errorf("%w: %s", ErrUnknownCall, callID)
	}
	c.endCall(call, nil)
	return nil
}

// Calls returns the calls the core routes, sorted by ID.
func (c *Core) Calls() []CallInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]CallInfo, 0, len(c.calls))
	for _, call := range c.calls {
		ci := CallInfo{ID: call.id, Caller: call.legs[0].msisdn, Callee: call.legs[1].msisdn, Active: call.active}
		for _, l := range call.legs {
			if l.reg == nil {
				ci.OnPhone = append(ci.OnPhone, l.msisdn)
			}
		}
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Registrations returns how many streams of msisdn are registered.
func (c *Core) Registrations(msisdn string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.regs {
		if r.msisdn == msisdn {
			n++
		}
	}
	return n
}

// Send queues m as is (no validation, no routing) on every stream of msisdn
// and returns how many; for testing terminals against odd input.
func (c *Core) Send(msisdn string, m *pb.WebTerminalMessage) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.regs {
		if r.msisdn == msisdn {
			r.out.push(m)
			n++
		}
	}
	return n
}

// errDropped ends streams cut by Drop.
var errDropped = errors.New("webterminal: stream dropped by the core")

// Drop ends every stream of msisdn (their calls end as if the stream was
// lost) and returns how many; the terminals re-register.
func (c *Core) Drop(msisdn string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.regs {
		if r.msisdn == msisdn {
			r.cancel(errDropped)
			n++
		}
	}
	return n
}

// Close ends every stream and waits for the core's stream handlers to return.
// Stop the grpc.Server too; Close does not. It is idempotent.
func (c *Core) Close() error {
	c.mu.Lock()
	if !c.closed {
		close(c.stop)
	}
	c.closed = true
	for _, r := range c.regs {
		r.cancel(ErrClosed)
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// AttachMedia has the core terminate the media of party msisdn's leg of the
// active call callID itself, as a media server would: it places a call on
// agent (media from mc, or the agent's MediaConfig when nil) whose offer
// goes to that party's terminal as a re-offer (Renegotiate) and whose
// answer it applies. It returns the agent's call, Active, once the
// terminal's answer is in force; its Stream carries the party's media. The
// agent's call ends (call.RemoteHangup) when the routed call ends, and
// hanging it up ends the routed call (Hangup); a re-offer on it
// (call.Call.Renegotiate) renegotiates the party again.
func (c *Core) AttachMedia(ctx context.Context, agent *call.Agent, callID, msisdn string, mc *call.MediaConfig) (*call.Call, error) {
	c.mu.Lock()
	routed := c.calls[callID]
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if routed == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownCall, callID)
	}
	leg := &mediaLeg{core: c, agent: agent, callID: callID, msisdn: msisdn}
	cc, err := agent.Dial(ctx, leg, call.Params{Remote: call.Party{URI: "tel:" + msisdn}, Media: mc})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cc.RemoteHangup(call.Reason{Kind: call.SignalingFailed, Text: "core closed", Err: ErrClosed})
		return nil, ErrClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		select {
		case <-routed.done:
			cc.RemoteHangup(call.Reason{Kind: call.RemoteHangup, Text: "the routed call ended"})
		case <-c.stop:
			cc.RemoteHangup(call.Reason{Kind: call.SignalingFailed, Text: "core closed", Err: ErrClosed})
		case <-cc.Done():
		}
	}()
	select {
	case <-cc.Done():
		return nil, cc.Reason()
	default:
	}
	return cc, nil
}

// mediaLeg is the call.Signaling of a call the core terminates itself
// (AttachMedia): its offers are renegotiations of one party's leg.
type mediaLeg struct {
	core           *Core
	agent          *call.Agent
	callID, msisdn string
}

// SendOffer implements call.Signaling: Renegotiate with the party's
// terminal, then the answer is applied (or the refusal reported).
func (l *mediaLeg) SendOffer(ctx context.Context, offer []byte) error {
	ans, err := l.core.Renegotiate(ctx, l.callID, l.msisdn, string(offer))
	cc := l.call()
	if cc == nil {
		return ErrClosed
	}
	if err != nil {
		cc.RemoteReject(call.Reason{Kind: call.SignalingFailed, Text: "renegotiating the terminal", Err: err})
		return nil
	}
	_ = cc.RemoteAnswer([]byte(ans)) // an unusable answer ends the call with its reason
	return nil
}

// call returns the agent's call of l, once the agent knows it.
func (l *mediaLeg) call() *call.Call {
	for _, cc := range l.agent.Calls() {
		if cc.Signaling() == call.Signaling(l) {
			return cc
		}
	}
	return nil
}

// SendRinging implements call.Signaling; never used (the core places the call).
func (l *mediaLeg) SendRinging(context.Context) error { return errors.ErrUnsupported }

// SendAnswer implements call.Signaling; never used (the core places the call).
func (l *mediaLeg) SendAnswer(context.Context, []byte) error { return errors.ErrUnsupported }

// SendReject implements call.Signaling; never used (the core places the call).
func (l *mediaLeg) SendReject(context.Context, call.Reason) error { return errors.ErrUnsupported }

// SendHangup implements call.Signaling: the routed call ends.
func (l *mediaLeg) SendHangup(context.Context, call.Reason) error {
	if err := l.core.Hangup(l.callID); err != nil && !errors.Is(err, ErrUnknownCall) {
		return err
	}
	return nil
}
