package sipp2p

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// dialog is the SIP side of one call (RFC 3261 §12): it implements
// call.Signaling. It is identified by the Call-ID, our tag and the peer's
// tag; an in-dialog request matches only when all three do.
type dialog struct {
	e          *Endpoint
	callID     string
	t          Transport
	uac        bool // we sent the initial INVITE
	client     *sipgo.Client
	localTag   string
	local      sip.Uri // our URI: From of our requests
	remote     sip.Uri // the peer's URI: To of our requests
	contact    sip.ContactHeader
	initialSeq uint32 // CSeq of the initial INVITE
	info       CallInfo
	reacks     atomic.Int32 // ACKs sent again for retransmitted 2xx

	mu        sync.Mutex
	c         *call.Call
	remoteTag string
	target    sip.Uri   // remote target (Contact), refreshed by re-INVITEs
	routes    []sip.Uri // route set (Record-Route)
	localSeq  uint32
	remoteSeq uint32
	confirmed bool                    // the initial INVITE got its 2xx
	byeDone   bool                    // BYE sent or received
	reinBusy  bool                    // an incoming re-INVITE is being answered
	acks      map[uint32]chan []byte  // our 2xx awaiting their ACK, by CSeq; the ACK's body is sent
	sentAcks  map[uint32]*sip.Request // ACKs we sent for 2xx, for retransmitted 2xx (§13.2.2.4)

	// UAS: the initial INVITE.
	inv       *sip.Request
	invTx     sip.ServerTransaction
	final     chan struct{} // a final response to the initial INVITE was sent
	finalOnce sync.Once
	offerless bool                         // UAS: the INVITE had no offer (delayed offer): the answer comes in the ACK; UAC: our INVITE had none, the offer comes in the 2xx
	ackBody   []byte                       // the body of the ACK of our 2xx to the initial INVITE
	onAck     map[uint32]func(body []byte) // what an ACK's body is for (our offer in a 2xx)
	emptyRe   *emptyReinvite               // a re-INVITE without offer awaiting ours

	rejected []rejectedLine // offer lines taken out before the core saw them

	// UAC: the initial INVITE.
	invReq     *sip.Request
	inviteSent bool
	responded  bool          // a response to the INVITE arrived
	first      chan struct{} // first response or failure
	firstOnce  sync.Once
	firstErr   error
	ackSent    chan struct{} // delayed offer: closed once the 2xx was acknowledged (nil otherwise)
	stop       chan struct{} // hang up before the answer: CANCEL
	stopOnce   sync.Once
	waitDone   chan struct{} // the INVITE transaction is over
}

var _ call.Signaling = (*dialog)(nil)

// callRef returns the dialog's call (nil while the core makes it or after).
func (d *dialog) callRef() *call.Call {
	d.mu.Lock()
	c := d.c
	d.mu.Unlock()
	if c == nil {
		c = d.e.agent.Call(d.callID)
	}
	return c
}

func (d *dialog) markFinal() { d.finalOnce.Do(func() { close(d.final) }) }

// markFirst records the outcome the initial INVITE's sender waits for; it
// reports whether this call recorded it (the sender then returns err to
// the core, which ends the call itself).
func (d *dialog) markFirst(err error) bool {
	marked := false
	d.firstOnce.Do(func() {
		d.mu.Lock()
		d.firstErr = err
		d.mu.Unlock()
		close(d.first)
		marked = true
	})
	return marked
}

// matches reports whether an in-dialog request with remote tag tag belongs
// to d (our tag was matched by the lookup).
func (d *dialog) matches(tag string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.remoteTag == tag
}

// newRequest builds an in-dialog request (RFC 3261 §12.2.1.1): Request-URI
// the remote target, Route the route set, our and the peer's tags, the next
// CSeq (ACK and CANCEL carry seq as given).
func (d *dialog) newRequest(method sip.RequestMethod, seq uint32) *sip.Request {
	d.mu.Lock()
	target, routes, rtag := d.target, d.routes, d.remoteTag
	if method != sip.ACK && method != sip.CANCEL {
		d.localSeq++
		seq = d.localSeq
	}
	d.mu.Unlock()
	req := sip.NewRequest(method, *target.Clone())
	req.SetTransport(d.t.sip())
	from := sip.FromHeader{Address: d.local, Params: sip.NewParams()}
	from.Params.Add("tag", d.localTag)
	to := sip.ToHeader{Address: d.remote, Params: sip.NewParams()}
	if rtag != "" {
		to.Params.Add("tag", rtag)
	}
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, r := range routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	if method == sip.INVITE {
		ct := d.contact
		req.AppendHeader(&ct)
	}
	d.e.addCommon(req)
	d.e.noteOutgoing(d.t, req.Destination())
	return req
}

// refreshTarget replaces the remote target with m's Contact, if any
// (RFC 3261 §12.2: target refresh).
func (d *dialog) refreshTarget(m sip.Message) {
	var ct *sip.ContactHeader
	switch m := m.(type) {
	case *sip.Request:
		ct = m.Contact()
	case *sip.Response:
		ct = m.Contact()
	}
	if ct == nil || ct.Address.Host == "" {
		return
	}
	d.mu.Lock()
	d.target = *ct.Address.Clone()
	d.mu.Unlock()
}

// routeSet reads the Record-Route headers of m: as they are for the UAS,
// reversed for the UAC (RFC 3261 §12.1.1, §12.1.2).
func routeSet(m sip.Message, reverse bool) []sip.Uri {
	var out []sip.Uri
	for _, h := range m.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			out = append(out, *rr.Address.Clone())
		}
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// checkSeq applies RFC 3261 §12.2.2: a request whose CSeq is lower than
// the last one is refused 500; otherwise the CSeq is remembered.
func (d *dialog) checkSeq(seq uint32) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.remoteSeq != 0 && seq <= d.remoteSeq {
		return false
	}
	d.remoteSeq = seq
	return true
}

// SendHangup sends CANCEL before the answer and BYE after it. As UAS a BYE
// waits for the ACK of our 2xx (RFC 3261 §15): while it is awaited the
// retransmitter sends the BYE once the ACK came or 64*T1 passed.
func (d *dialog) SendHangup(ctx context.Context, r call.Reason) error {
	if !d.uac {
		d.mu.Lock()
		_, unacked := d.acks[d.initialSeq]
		d.mu.Unlock()
		if unacked {
			return nil
		}
	}
	if d.uac {
		d.mu.Lock()
		confirmed := d.confirmed
		d.mu.Unlock()
		if !confirmed {
			d.stopOnce.Do(func() { close(d.stop) })
			select {
			case <-d.waitDone:
			case <-ctx.Done():
				return ctx.Err()
			}
			d.mu.Lock()
			confirmed = d.confirmed
			d.mu.Unlock()
			if !confirmed {
				return nil
			}
			// A 2xx crossed our CANCEL: the 2xx handler sent ACK and BYE.
			return nil
		}
	}
	return d.bye(ctx)
}

// bye sends BYE once and waits for its final response (bounded by ctx).
func (d *dialog) bye(ctx context.Context) error {
	d.mu.Lock()
	if d.byeDone {
		d.mu.Unlock()
		return nil
	}
	d.byeDone = true
	d.mu.Unlock()
	defer d.e.untrack(d)
	if err := d.waitAckSent(ctx); err != nil {
		return err
	}
	req := d.newRequest(sip.BYE, 0)
	var res *sip.Response
	err := d.e.sending(func() (err error) {
		res, err = d.client.Do(ctx, req)
		return err
	})
	if err != nil {
		return d.e.transportError(ctx, d.t, req, err)
	}
	if !res.IsSuccess() && res.StatusCode != 481 {
		d.e.log.Debug("BYE refused", "call", d.callID, "code", res.StatusCode)
	}
	return nil
}

// waitAckSent waits (bounded by ctx) until the 2xx to our INVITE without
// an offer was acknowledged: the call is Active as soon as its answer is
// made, before the ACK that carries it is sent, and no request of ours may
// overtake that ACK.
func (d *dialog) waitAckSent(ctx context.Context) error {
	if d.ackSent == nil {
		return nil
	}
	select {
	case <-d.ackSent:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// byeAsync sends BYE on a goroutine of the endpoint (bounded by 64*T1).
func (d *dialog) byeAsync() {
	if !d.e.spawn(func() {
		ctx, cancel := d.e.sendContext(64 * d.e.cfg.T1)
		defer cancel()
		d.bye(ctx)
	}) {
		d.e.untrack(d)
	}
}

// watch forgets the dialog when its call ends.
func (d *dialog) watch(c *call.Call) {
	select {
	case <-c.Done():
	case <-d.e.closing:
		return
	}
	d.mu.Lock()
	pending := len(d.acks) > 0
	d.mu.Unlock()
	if !pending {
		// With a 2xx awaiting its ACK the retransmitter ends the dialog.
		d.e.untrack(d)
	}
}
