package flow

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/reflow-go/reflow/internal/leak"
	"github.com/reflow-go/reflow/internal/testserver"
	"github.com/reflow-go/reflow/natmode"
)

// turnFlow starts a TURN flow over mode on srv and waits until it is ready.
func turnFlow(t *testing.T, srv *testserver.TURN, mode natmode.Mode) *Flow {
	t.Helper()
	nat := natmode.Config{Mode: mode, Server: srv.UDP, Username: testserver.DefaultUsername, Password: testserver.DefaultPassword,
		RootCAs: srv.RootCAs, ServerName: srv.ServerName}
	switch mode {
	case natmode.TURNTCP:
		nat.Server = srv.TCP
	case natmode.TURNTLS:
		nat.Server = srv.TLS
	}
	ev := make(chan Event, 4)
	f, err := New(context.Background(), listen(t, loop4), Config{NAT: nat, OnEvent: func(e Event) { ev <- e }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	select {
	case e := <-ev:
		if e.Kind != EventReady {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	return f
}

// The internal API the ICE agent uses: relayPermit creates a permission in
// the background and reports it; relaySend then reaches the peer through
// the relay (as a Send indication, no channel) without waiting.
func TestRelayPermitAndSend(t *testing.T) {
	leak.Check(t)
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, mode := range []natmode.Mode{natmode.TURNUDP, natmode.TURNTCP} {
		t.Run(mode.String(), func(t *testing.T) {
			a := turnFlow(t, srv, mode)
			b := newFlow(t, loop4, Config{})
			relayed := a.RelayTuple().Addr
			if err := b.SetActiveDestination(relayed); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			if err := a.relayPermit(b.LocalTuple().Addr.Addr(), func(err error) { done <- err }); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("permission: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("relayPermit never reported")
			}
			p := rtpPacket(1, 163)
			if err := a.relaySend(p, b.LocalTuple().Addr); err != nil {
				t.Fatal(err)
			}
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2048)
			n, from, err := b.ReadFromAddrPort(buf)
			if err != nil || !bytes.Equal(buf[:n], p) || from != relayed {
				t.Fatalf("got %d bytes from %v (%v), want %d from %v", n, from, err, len(p), relayed)
			}
		})
	}
}

// Before the allocation exists and after Close, the relay calls fail with
// errors matching the flow's sentinels.
func TestRelayAPIErrors(t *testing.T) {
	leak.Check(t)
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	plain := newFlow(t, loop4, Config{})
	var fe *Error
	if err := plain.relayPermit(loop4, nil); !errors.As(err, &fe) || !errors.Is(err, ErrNotReady) {
		t.Fatalf("relayPermit without TURN: %v", err)
	}
	a := turnFlow(t, srv, natmode.TURNUDP)
	a.Close()
	if err := a.relayPermit(loop4, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("relayPermit after Close: %v", err)
	}
}
