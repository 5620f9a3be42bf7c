package dtlssrtp

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/dtls/v2/pkg/protocol"
	"github.com/pion/dtls/v2/pkg/protocol/alert"
	"github.com/pion/dtls/v2/pkg/protocol/extension"
	"github.com/pion/dtls/v2/pkg/protocol/handshake"
	"github.com/pion/dtls/v2/pkg/protocol/recordlayer"
)

// wireConn sits between pion's dtls.Conn and the caller's net.Conn. It
// passes every byte through unchanged and only watches the plaintext parts of
// the records, because pion/dtls v2 does not tell its user why a handshake or
// an association ended:
//
//   - alerts in epoch 0 (during the handshake) are plaintext: their level and
//     description are recorded in both directions;
//   - the ClientHello (server role) and ServerHello (client role) are parsed
//     for the use_srtp extension, so that "no common SRTP profile" can be
//     told apart from other insufficient_security failures;
//   - after the handshake, alerts are encrypted; pion answers a received
//     close_notify with its own close_notify and then closes the conn, but
//     sends nothing after a received fatal alert. Whether pion wrote an alert
//     on its own just before it closed the conn tells the two apart.
//   - a Read error of the underlying conn (the caller closed it) is recorded.
//
// Parsing uses pion's own decoders inside recover: a broken packet is never
// fatal here, pion then discards or rejects it itself.
type wireConn struct {
	net.Conn
	client bool

	mu          sync.Mutex
	established bool // handshake done: stop parsing hellos

	sentAlert, recvAlert *alert.Alert // first plaintext fatal alerts

	helloSeen   bool                              // the peer's hello was parsed
	peerUseSRTP bool                              // it carried use_srtp
	peerSuites  []extension.SRTPProtectionProfile // profiles in it

	outAlerts  int   // encrypted alerts written since the last reset
	readErr    error // last Read error of the underlying conn
	closedHere bool  // Close was called (by pion or by the Session)

	localClose   bool          // the Session is closing the association
	alertOut     chan struct{} // closed at the first encrypted alert written
	alertOutOnce sync.Once
}

// closeNotifyWait bounds how long Close waits for pion's close_notify (see
// wireConn.Close).
const closeNotifyWait = 250 * time.Millisecond

func newWireConn(c net.Conn, client bool) *wireConn {
	return &wireConn{Conn: c, client: client, alertOut: make(chan struct{})}
}

// Read reads one datagram from the underlying conn and inspects it.
func (w *wireConn) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if n > 0 {
		_ = w.inspect(b[:n], true)
	}
	if err != nil {
		w.mu.Lock()
		if !w.closedHere && !isTimeout(err) {
			w.readErr = err
		}
		w.mu.Unlock()
	}
	return n, err
}

// Write inspects one datagram and writes it to the underlying conn.
func (w *wireConn) Write(b []byte) (int, error) {
	alertOut := w.inspect(b, false)
	n, err := w.Conn.Write(b)
	if alertOut {
		// Only now is the alert on the wire (see Close).
		w.alertOutOnce.Do(func() { close(w.alertOut) })
	}
	return n, err
}

// Close closes the underlying conn. While the Session is closing the
// association it first waits (at most closeNotifyWait) until pion has
// written its close_notify: dtls/v2's Conn.Close cancels its read loop
// before it sends close_notify, and the read loop, seeing the cancellation,
// closes the conn itself, racing the close_notify off the wire (observed
// about once in 150 closes on loopback). Holding that Close back until the
// alert is out makes the peer learn of the close reliably.
func (w *wireConn) Close() error {
	w.mu.Lock()
	w.closedHere = true
	wait := w.localClose
	w.mu.Unlock()
	if wait {
		t := time.NewTimer(closeNotifyWait)
		select {
		case <-w.alertOut:
		case <-t.C:
		}
		t.Stop()
	}
	return w.Conn.Close()
}

// expectLocalClose tells Close that the Session is closing the association
// and pion is about to send close_notify.
func (w *wireConn) expectLocalClose() {
	w.mu.Lock()
	w.localClose = true
	w.mu.Unlock()
}

// SetReadDeadline etc. are promoted from the embedded net.Conn; pion uses
// them to interrupt a blocked Read or Write when its context ends.
var _ net.Conn = (*wireConn)(nil)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// inspect looks at the records of one datagram. It reports whether an
// outbound datagram carries an encrypted alert.
func (w *wireConn) inspect(b []byte, inbound bool) (encAlertOut bool) {
	defer func() { _ = recover() }() // a parser panic must not hurt the data path
	recs, err := recordlayer.UnpackDatagram(b)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range recs {
		var h recordlayer.Header
		if h.Unmarshal(r) != nil {
			continue
		}
		body := r[recordlayer.HeaderSize:]
		switch h.ContentType {
		case protocol.ContentTypeAlert:
			if h.Epoch != 0 {
				if !inbound {
					w.outAlerts++
					encAlertOut = true
				}
				continue
			}
			if len(body) < 2 || alert.Level(body[0]) != alert.Fatal {
				continue
			}
			a := &alert.Alert{Level: alert.Level(body[0]), Description: alert.Description(body[1])}
			if inbound && w.recvAlert == nil {
				w.recvAlert = a
			} else if !inbound && w.sentAlert == nil {
				w.sentAlert = a
			}
		case protocol.ContentTypeHandshake:
			if inbound && h.Epoch == 0 && !w.established {
				w.parseHello(body)
			}
		}
	}
	return encAlertOut
}

// parseHello records the use_srtp extension of the peer's hello (an
// unfragmented ClientHello when we are the server, ServerHello when we are
// the client).
func (w *wireConn) parseHello(b []byte) {
	var hh handshake.Header
	if hh.Unmarshal(b) != nil || hh.FragmentOffset != 0 || hh.FragmentLength != hh.Length {
		return
	}
	body := b[handshake.HeaderLength:]
	if uint32(len(body)) < hh.Length {
		return
	}
	body = body[:hh.Length]
	var exts []extension.Extension
	switch {
	case !w.client && hh.Type == handshake.TypeClientHello:
		var m handshake.MessageClientHello
		if m.Unmarshal(body) != nil {
			return
		}
		exts = m.Extensions
	case w.client && hh.Type == handshake.TypeServerHello:
		var m handshake.MessageServerHello
		if m.Unmarshal(body) != nil {
			return
		}
		exts = m.Extensions
	default:
		return
	}
	w.helloSeen, w.peerUseSRTP, w.peerSuites = true, false, nil
	for _, e := range exts {
		if u, ok := e.(*extension.UseSRTP); ok {
			w.peerUseSRTP = true
			w.peerSuites = append([]extension.SRTPProtectionProfile(nil), u.ProtectionProfiles...)
		}
	}
}

// noCommonSuite reports whether the peer's hello showed that it shares no
// SRTP profile with ours (or offered none at all).
func (w *wireConn) noCommonSuite(ours []dtls.SRTPProtectionProfile) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.helloSeen {
		return false
	}
	if !w.peerUseSRTP {
		return true
	}
	for _, p := range w.peerSuites {
		for _, q := range ours {
			if p == q {
				return false
			}
		}
	}
	return true
}

// alerts returns the first plaintext fatal alerts sent and received.
func (w *wireConn) alerts() (sent, recv *alert.Alert) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sentAlert, w.recvAlert
}

// markEstablished stops hello parsing and resets the encrypted-alert count
// (pion's own Finished-related traffic is not an alert, but be exact).
func (w *wireConn) markEstablished() {
	w.mu.Lock()
	w.established = true
	w.outAlerts = 0
	w.mu.Unlock()
}

// resetOutAlerts forgets encrypted alerts written so far. The watcher calls
// it when pion hands it a non-fatal error: pion may have sent a fatal alert
// of its own for that error without ending the association.
func (w *wireConn) resetOutAlerts() {
	w.mu.Lock()
	w.outAlerts = 0
	w.mu.Unlock()
}

// endState reports how the association ended from the wire's point of view.
func (w *wireConn) endState() (closedHere bool, outAlerts int, readErr error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closedHere, w.outAlerts, w.readErr
}
