package webterminal

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/reflow-go/reflow/call"
	pb "github.com/reflow-go/reflow/call/webterminal/webterminalpb"
	"github.com/reflow-go/reflow/internal/leak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

func byeMsg(id string) *pb.WebTerminalMessage {
	return &pb.WebTerminalMessage{CallId: id, Message: &pb.WebTerminalMessage_Bye{Bye: &pb.Bye{}}}
}

// A MultiPipe message without a UUID call_id is rejected by the terminal with
// ErrInvalidCallID and the stream goes on; messages for unknown calls are
// ignored.
func TestTerminalRejectsBadCallID(t *testing.T) {
	leak.Check(t)
	core, addr := startCore(t, CoreConfig{})
	a := dial(t, addr, "100", MultiPipe, "accept")
	dial(t, addr, "200", MultiPipe, "accept")
	bad := []*pb.WebTerminalMessage{
		{Message: &pb.WebTerminalMessage_Offer{Offer: &pb.Offer{Sdp: "x", Msisdn: "9"}}},
		{CallId: "not-a-uuid", Message: &pb.WebTerminalMessage_Bye{Bye: &pb.Bye{}}},
		{CallId: "{" + uuid.NewString() + "}", Message: &pb.WebTerminalMessage_InCall{InCall: &pb.InCall{Msisdn: "100"}}},
	}
	for _, m := range bad {
		core.Send("100", m)
		err := recv(t, a.rec.protoErr, "protocol error")
		if !errors.Is(err, ErrInvalidCallID) {
			t.Fatalf("got %v, want ErrInvalidCallID", err)
		}
	}
	// Unknown calls: ignored, nothing created.
	id := uuid.NewString()
	for _, m := range []*pb.WebTerminalMessage{
		byeMsg(id),
		{CallId: id, Message: &pb.WebTerminalMessage_Answer{Answer: &pb.Answer{Sdp: "x"}}},
		{CallId: id, Message: &pb.WebTerminalMessage_Ringing{Ringing: &pb.Ringing{}}},
		{CallId: id, Message: &pb.WebTerminalMessage_Action{Action: &pb.Action{Action: &pb.Action_ToPhone{ToPhone: &pb.ToPhone{}}}}},
		{CallId: id},
	} {
		core.Send("100", m)
	}
	// The same stream still carries calls (in order after the messages above).
	c, err := a.Call(ctxT(t), "200")
	if err != nil {
		t.Fatal(err)
	}
	a.rec.up(t, c, "call after bad messages")
	if n := len(a.Calls()); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
	select {
	case err := <-a.rec.unregistered:
		t.Fatalf("stream ended: %v", err)
	case err := <-a.rec.protoErr:
		t.Fatalf("unexpected protocol error %v", err)
	default:
	}
	if _, err := a.TakeOver(ctxT(t), "nope"); !errors.Is(err, ErrInvalidCallID) {
		t.Fatalf("TakeOver with a bad call_id: %v", err)
	}
}

// The core rejects a MultiPipe message without a UUID call_id with a clear
// error and keeps the stream; it ignores messages for unknown calls.
func TestCoreRejectsBadCallID(t *testing.T) {
	leak.Check(t)
	errs := make(chan error, 8)
	_, addr := startCore(t, CoreConfig{OnError: func(_ string, err error) { errs <- err }})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	st, err := pb.NewWebTerminalClient(conn).MultiPipe(metadata.AppendToOutgoingContext(ctx, MetadataMSISDN, "100"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "123"} {
		if err := st.Send(&pb.WebTerminalMessage{CallId: id, Message: &pb.WebTerminalMessage_Offer{Offer: &pb.Offer{Sdp: "x", Msisdn: "200"}}}); err != nil {
			t.Fatal(err)
		}
		err := recv(t, errs, "core error")
		if !errors.Is(err, ErrInvalidCallID) {
			t.Fatalf("got %v", err)
		}
	}
	if err := st.Send(byeMsg(uuid.NewString())); err != nil { // unknown call: ignored
		t.Fatal(err)
	}
	// Still served: an Offer to nobody is answered with Bye on the same stream.
	id := uuid.NewString()
	if err := st.Send(&pb.WebTerminalMessage{CallId: id, Message: &pb.WebTerminalMessage_Offer{Offer: &pb.Offer{Sdp: "x", Msisdn: "999"}}}); err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.GetBye() == nil || m.GetCallId() != id {
		t.Fatalf("got %s, want Bye for %s", Format(m), id)
	}
	st.CloseSend()
	if _, err := st.Recv(); err == nil {
		t.Fatal("stream not ended after CloseSend")
	}
}

// A stream without an msisdn is refused.
func TestCoreRefusesAnonymous(t *testing.T) {
	leak.Check(t)
	_, addr := startCore(t, CoreConfig{})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := pb.NewWebTerminalClient(conn).Pipe(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err == nil {
		t.Fatal("anonymous stream served")
	}
}

// Losing the stream ends its calls with ErrStreamLost (the other party gets
// Bye) and the terminal re-registers with backoff; calls work again.
func TestStreamLossReregisters(t *testing.T) {
	for _, mode := range []Mode{Pipe, MultiPipe} {
		t.Run(mode.String(), func(t *testing.T) {
			leak.Check(t)
			core, addr := startCore(t, CoreConfig{})
			a := dial(t, addr, "100", mode, "")
			b := dial(t, addr, "200", MultiPipe, "accept")
			c, in := establish(t, a, b, "200")
			if n := core.Drop("100"); n != 1 {
				t.Fatalf("dropped %d streams", n)
			}
			reason(t, c, call.SignalingFailed, ErrStreamLost, "caller")
			if err := recv(t, a.rec.unregistered, "unregistered"); !errors.Is(err, ErrStreamLost) {
				t.Fatalf("unregistered with %v", err)
			}
			reason(t, in, call.RemoteHangup, ErrRemoteHangup, "other party")
			recv(t, a.rec.registered, "re-registered")
			if !a.Registered() || core.Registrations("100") != 1 {
				t.Fatalf("registered %v, core sees %d", a.Registered(), core.Registrations("100"))
			}
			establish(t, a, b, "200") // a call after the re-registration
		})
	}
}

// Closing the core's server ends the terminal's calls; the terminal keeps
// trying to re-register (Registered false) and Close stops it.
func TestServerGone(t *testing.T) {
	leak.Check(t)
	core, err := NewCore(CoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, addr1 := serveOn(t, core)
	a := dial(t, addr1, "100", MultiPipe, "")
	srv.Stop()
	core.Close()
	err = recv(t, a.rec.unregistered, "unregistered")
	if !errors.Is(err, ErrStreamLost) {
		t.Fatalf("unregistered with %v", err)
	}
	if a.Registered() {
		t.Fatal("still registered")
	}
	if _, err := a.Call(ctxT(t), "200"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("Call while unregistered: %v", err)
	}
	a.Close()
	if _, err := a.Call(ctxT(t), "200"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close: %v", err)
	}
}
