package sipp2p

import (
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// retransmit retransmits our 2xx res to the INVITE with CSeq seq, already
// sent once, from T1 doubling to T2 until its ACK arrives (RFC 3261
// §13.3.1.4); without an ACK after 64*T1 it ends the dialog with a BYE.
// acked is closed when the ACK arrived.
func (d *dialog) retransmit(tx sip.ServerTransaction, res *sip.Response, seq uint32, ack chan []byte, acked chan struct{}) {
	e := d.e
	send := func() {
		var err error
		select {
		case <-tx.Done():
			// The server transaction is gone (its Timer L or a transport
			// error): the response goes straight to the transport.
			err = e.ua.TransportLayer().WriteMsg(res)
		default:
			err = tx.Respond(res)
		}
		if err != nil {
			e.log.Debug("2xx retransmission", "call", d.callID, "err", err)
		}
	}
	interval := e.cfg.T1
	t := time.NewTimer(interval)
	defer t.Stop()
	deadline := time.NewTimer(64 * e.cfg.T1)
	defer deadline.Stop()
	for {
		select {
		case body := <-ack:
			d.mu.Lock()
			d.ackBody = body
			onAck := d.onAck[seq]
			delete(d.onAck, seq)
			d.mu.Unlock()
			close(acked)
			if onAck != nil {
				onAck(body)
			}
			d.acked(seq, body)
			return
		case <-t.C:
			send()
			interval = min(2*interval, e.cfg.T2)
			t.Reset(interval)
		case <-deadline.C:
			d.mu.Lock()
			delete(d.acks, seq)
			d.mu.Unlock()
			e.log.Debug("no ACK for 2xx: ending the call", "call", d.callID, "cseq", seq)
			c := d.callRef()
			if c != nil {
				c.RemoteHangup(call.Reason{Kind: call.SignalingFailed, Code: 408, Text: "no ACK"})
			}
			ctx, cancel := e.sendContext(64 * e.cfg.T1)
			d.bye(ctx)
			cancel()
			return
		case <-e.closing:
			return
		}
	}
}

// acked handles the ACK of our 2xx to the INVITE with CSeq seq: it ends a
// dialog whose call ended while the ACK was awaited.
func (d *dialog) acked(seq uint32, body []byte) {
	c := d.callRef()
	ended := c == nil
	if c != nil {
		select {
		case <-c.Done():
			ended = true
		default:
		}
	}
	if !ended {
		return
	}
	d.mu.Lock()
	bye := !d.byeDone
	d.mu.Unlock()
	if bye {
		ctx, cancel := d.e.sendContext(64 * d.e.cfg.T1)
		d.bye(ctx)
		cancel()
	}
	d.e.untrack(d)
}

// sendAck acknowledges a 2xx to our INVITE with CSeq seq (RFC 3261
// §13.2.2.4) and keeps the ACK for retransmitted 2xx responses.
func (d *dialog) sendAck(seq uint32, body []byte) {
	ack := d.newRequest(sip.ACK, seq)
	if len(body) > 0 {
		ack.SetBody(body)
		ct := sip.ContentTypeHeader("application/sdp")
		ack.AppendHeader(&ct)
	}
	// Kept before it is sent: the peer may retransmit its 2xx the moment
	// our ACK arrives, and that 2xx must find the ACK to send again.
	d.mu.Lock()
	if d.sentAcks == nil {
		d.sentAcks = make(map[uint32]*sip.Request)
	}
	d.sentAcks[seq] = ack.Clone() // never written to: every re-ACK sends a copy
	d.mu.Unlock()
	if err := d.e.sending(func() error { return d.client.WriteRequest(ack) }); err != nil {
		d.e.log.Debug("ACK", "call", d.callID, "err", err)
	}
}

// reack sends again the ACK of a retransmitted 2xx to our INVITE.
func (d *dialog) reack(res *sip.Response) {
	defer d.e.guard("re-ACK")
	if res.CSeq() == nil || res.CSeq().MethodName != sip.INVITE || !res.IsSuccess() {
		return
	}
	d.mu.Lock()
	ack := d.sentAcks[res.CSeq().SeqNo]
	d.mu.Unlock()
	if ack == nil {
		return
	}
	d.reacks.Add(1)
	ack = ack.Clone() // the same ACK (same branch), a copy sipgo may write to
	if err := d.e.sending(func() error { return d.client.WriteRequest(ack) }); err != nil {
		d.e.log.Debug("re-ACK", "call", d.callID, "err", err)
	}
}

// onStrayResponse receives responses matching no client transaction: a 2xx
// to one of our INVITEs retransmitted after its transaction ended is
// acknowledged again (RFC 3261 §13.2.2.4); the rest is dropped.
func (e *Endpoint) onStrayResponse(res *sip.Response) {
	defer e.guard("response")
	if res.CallID() == nil || res.From() == nil || res.To() == nil {
		return
	}
	ltag, _ := res.From().Params.Get("tag")
	rtag, _ := res.To().Params.Get("tag")
	d := e.lookup(res.CallID().Value(), ltag)
	if d == nil || !d.matches(rtag) {
		return
	}
	d.reack(res)
}
