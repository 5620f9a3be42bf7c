package sipp2p

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/internal/leak"
)

// TestConnectionErrors: a refused connection is a *ConnectionError, over
// TLS too (not a *TLSError), and error texts are one line without library
// internals.
func TestConnectionErrors(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	ca := newCA(t)
	a := newEP(t, Config{TLS: &TLSConfig{RootCAs: ca.pool}}, call.MediaConfig{})
	for _, tr := range []Transport{TCP, TLS} {
		_, err := a.Call(ctx, "sip:x@"+dead+";transport="+string(tr), nil)
		var ce *ConnectionError
		var te *TLSError
		if !errors.As(err, &ce) || errors.As(err, &te) {
			t.Errorf("%s: %v (%T)", tr, err, err)
			continue
		}
		msg := err.Error()
		if strings.ContainsAny(msg, "\n\r") || strings.Contains(msg, "dial err") || strings.Contains(msg, "transcation") {
			t.Errorf("%s: text %q", tr, msg)
		}
		t.Logf("%s: %s", tr, msg)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoDefaultLogging: with Config.Logger nil nothing reaches slog.Default
// (sipgo logs there unless told otherwise), through calls over TCP and UDP
// and their teardown, where sipgo warns about connection references.
func TestNoDefaultLogging(t *testing.T) {
	leak.Check(t)
	var def syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(old)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tr := range []Transport{TCP, UDP} {
		a := newEP(t, Config{}, call.MediaConfig{})
		b := newEP(t, Config{}, call.MediaConfig{})
		target := b.listen(t, tr)
		c, err := a.Call(ctx, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		cb := b.answer(t, ctx)
		waitState(t, ctx, c, call.Active)
		c.Hangup(ctx)
		waitDone(t, ctx, cb)
		a.Endpoint.Close()
		b.Endpoint.Close()
	}
	if s := def.String(); s != "" {
		t.Errorf("written to slog.Default:\n%s", s)
	}
}
