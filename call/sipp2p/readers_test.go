package sipp2p

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/internal/leak"
)

// TestCloseJoinsOutgoingReaders: the endpoint calls a UAS over TCP and over
// TLS (connections it dials, read by sipgo's readers) and is closed while
// the connections are open: once Close returns no reader of them is left.
// The UAS is not sipgo, so every sipgo reader in the process is the
// endpoint's.
func TestCloseJoinsOutgoingReaders(t *testing.T) {
	leak.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca := newCA(t)
	before := sipgoReaders()
	plain := newStreamUAS(t, nil)
	secure := newStreamUAS(t, &tls.Config{Certificates: []tls.Certificate{*ca.leaf(t, loopback, time.Now().Add(time.Hour))}})
	// A slow logger holds sipgo's readers in their last steps (the "ref
	// went negative" warning of a connection closed under them), so that a
	// Close that does not wait for them returns while they still run.
	slow := slog.New(slowWarnings{slog.DiscardHandler})
	a := newEP(t, Config{URI: "sip:alice@example.test", TLS: &TLSConfig{RootCAs: ca.pool}, Logger: slow}, call.MediaConfig{})
	for _, target := range []string{
		"sip:uas@" + plain.addr() + ";transport=tcp",
		"sip:uas@" + secure.addr() + ";transport=tls",
	} {
		c, err := a.Call(ctx, target, nil)
		if err != nil {
			t.Fatalf("call %s: %v", target, err)
		}
		waitState(t, ctx, c, call.Active)
	}
	if n := sipgoReaders() - before; n < 2 {
		t.Fatalf("%d sipgo readers for two outgoing connections", n)
	}
	// Close hangs the calls up (BYE over the open connections) and closes them.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := sipgoReaders() - before; n > 0 {
		t.Errorf("%d sipgo connection readers outlive Close", n)
	}
	if got := plain.requests() + secure.requests(); !strings.Contains(got, "BYE") {
		t.Errorf("the UAS saw %s", got)
	}
}

// slowWarnings takes 200 ms for each warning (a slow log sink).
type slowWarnings struct{ slog.Handler }

func (h slowWarnings) Enabled(context.Context, slog.Level) bool { return true }

func (h slowWarnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		time.Sleep(200 * time.Millisecond) // the slowness under test, not synchronisation
	}
	return nil
}

func (h slowWarnings) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slowWarnings) WithGroup(string) slog.Handler      { return h }

// sipgoReaders counts the goroutines in sipgo's stream connection reader.
func sipgoReaders() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "sip.(*TransportTCP).readConnection(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// streamUAS is a minimal SIP UAS over TCP or TLS that is not sipgo: it
// answers INVITE 200 with an SDP answer, every other request but ACK 200,
// on the connection the request came on.
type streamUAS struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn []net.Conn
	seen []string
}

func newStreamUAS(t *testing.T, conf *tls.Config) *streamUAS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	u := &streamUAS{ln: ln}
	u.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conn = append(u.conn, c)
			u.mu.Unlock()
			u.wg.Go(func() { u.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for _, c := range u.conn {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *streamUAS) addr() string { return u.ln.Addr().String() }

func (u *streamUAS) requests() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.seen, ",")
}

func (u *streamUAS) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for range 100 { // at most 100 messages a connection
		var head strings.Builder
		length := 0
		for range 64 { // at most 64 header lines
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.TrimSpace(line) == "" {
				if head.Len() == 0 {
					continue // keep-alive CRLF
				}
				break
			}
			head.WriteString(line)
			if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		body := make([]byte, min(length, 65536))
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		m, err := sip.ParseMessage([]byte(head.String() + "\r\n" + string(body)))
		if err != nil {
			continue
		}
		req, ok := m.(*sip.Request)
		if !ok {
			continue
		}
		u.mu.Lock()
		u.seen = append(u.seen, req.Method.String())
		u.mu.Unlock()
		if req.Method == sip.ACK {
			continue
		}
		var res *sip.Response
		if req.Method == sip.INVITE {
			res = sip.NewResponseFromRequest(req, 200, "OK", []byte(strings.ReplaceAll(answerSDP(45000, "sendrecv"), "\n", "\r\n")))
			res.To().Params.Add("tag", "stream-uas")
			ct := sip.ContentTypeHeader("application/sdp")
			res.AppendHeader(&ct)
			res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: u.ln.Addr().(*net.TCPAddr).Port}})
		} else {
			res = sip.NewResponseFromRequest(req, 200, "OK", nil)
		}
		if _, err := fmt.Fprint(c, res.String()); err != nil {
			return
		}
	}
}
