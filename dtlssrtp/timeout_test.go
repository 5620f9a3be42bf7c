package dtlssrtp

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// silentPeer returns our end of an in-bubble pipe whose other end reads and
// discards everything (drain) or nothing at all, and never answers.
func silentPeer(t *testing.T, drain bool) net.Conn {
	ours, theirs := net.Pipe()
	if drain {
		go func() { _, _ = io.Copy(io.Discard, theirs) }()
	}
	t.Cleanup(func() { theirs.Close(); ours.Close() })
	return ours
}

func TestHandshakeSilentPeerTimeout(t *testing.T) {
	checkGoroutines(t)
	alice, _, _ := testCerts(t)
	for _, tc := range []struct {
		name    string
		role    Role
		drain   bool
		timeout time.Duration
		want    time.Duration
	}{
		{"client default timeout", Client, true, 0, DefaultHandshakeTimeout},
		{"server default timeout", Server, true, 0, DefaultHandshakeTimeout},
		{"client peer not reading", Client, false, 3 * time.Second, 3 * time.Second},
		{"server short timeout", Server, false, 1500 * time.Millisecond, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				conn := silentPeer(t, tc.drain)
				start := time.Now()
				s, err := Handshake(context.Background(), conn, tc.role,
					Config{Certificate: alice, HandshakeTimeout: tc.timeout}, nil)
				if s != nil {
					s.Close()
					t.Fatal("handshake with a silent peer succeeded")
				}
				if !errors.Is(err, ErrHandshakeTimeout) || !errors.Is(err, ErrHandshakeFailed) ||
					!errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want ErrHandshakeTimeout, ErrHandshakeFailed, DeadlineExceeded", err)
				}
				if got := time.Since(start); got != tc.want {
					t.Errorf("failed after %v (fake time), want %v", got, tc.want)
				}
			})
		})
	}
}

func TestHandshakeContextDeadline(t *testing.T) {
	checkGoroutines(t)
	alice, _, _ := testCerts(t)
	synctest.Test(t, func(t *testing.T) {
		conn := silentPeer(t, true)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := Handshake(ctx, conn, Client, Config{Certificate: alice}, nil)
		if !errors.Is(err, ErrHandshakeTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want ErrHandshakeTimeout and DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("failed after %v, want the context's 2s", got)
		}
	})
}

func TestHandshakeContextCanceled(t *testing.T) {
	checkGoroutines(t)
	alice, _, _ := testCerts(t)
	synctest.Test(t, func(t *testing.T) {
		conn := silentPeer(t, true)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(1200*time.Millisecond, cancel)
		start := time.Now()
		_, err := Handshake(ctx, conn, Server, Config{Certificate: alice}, nil)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrHandshakeFailed) || errors.Is(err, ErrHandshakeTimeout) {
			t.Errorf("err = %v, want context.Canceled and ErrHandshakeFailed, not ErrHandshakeTimeout", err)
		}
		if got := time.Since(start); got != 1200*time.Millisecond {
			t.Errorf("failed after %v, want 1.2s", got)
		}
	})
}
