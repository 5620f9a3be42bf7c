package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flowmanager"
)

// ctrlMsg is one line of the control protocol (JSON, newline-delimited, on TCP):
//
//	connect -> listen  hello  {n, srtp, suite, rtcp, duration_ms, peers}
//	listen  -> connect answer {peers}     (the listener is configured, DTLS server started)
//	connect -> listen  start  {}          (the connector's streams are up: media begins)
//	connect -> listen  stop   {}          (the run is over)
//
// peers[i] is stream i's session tuples, SDES a=crypto value and DTLS
// fingerprint; stream i of one side pairs with stream i of the other.
type ctrlMsg struct {
	Type       string     `json:"type"`
	N          int        `json:"n,omitempty"`
	SRTP       string     `json:"srtp,omitempty"`
	Suite      string     `json:"suite,omitempty"`
	RTCP       bool       `json:"rtcp,omitempty"`
	DurationMs int64      `json:"duration_ms,omitempty"`
	Peers      []peerInfo `json:"peers,omitempty"`
	Error      string     `json:"error,omitempty"`
}

type ctrl struct {
	c   net.Conn
	enc *json.Encoder
	dec *json.Decoder
}

func newCtrl(c net.Conn) *ctrl {
	return &ctrl{c: c, enc: json.NewEncoder(c), dec: json.NewDecoder(bufio.NewReader(c))}
}

func (c *ctrl) send(m ctrlMsg) error { return c.enc.Encode(m) }

func (c *ctrl) expect(typ string) (ctrlMsg, error) {
	var m ctrlMsg
	if err := c.dec.Decode(&m); err != nil {
		return m, fmt.Errorf("control: waiting for %s: %w", typ, err)
	}
	if m.Type == "error" {
		return m, fmt.Errorf("control: peer: %s", m.Error)
	}
	if m.Type != typ {
		return m, fmt.Errorf("control: got %q, want %q", m.Type, typ)
	}
	return m, nil
}

// openAll opens n streams on m (o.parallel at a time, 0: all at once) and
// waits until each is ready or failed.
func openAll(ctx context.Context, o *opts, m *flowmanager.Manager, eps []*endpoint) {
	par := o.parallel
	if par <= 0 {
		par = len(eps)
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, e := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := e.open(ctx, m, o); err == nil {
				_ = e.waitReady(ctx)
			}
		}()
	}
	wg.Wait()
}

// runTwoProcess runs one side of a two-process test.
func runTwoProcess(ctx context.Context, o *opts) (*report, error) {
	var conn net.Conn
	var err error
	if o.listen != "" {
		ln, lerr := net.Listen("tcp", o.listen)
		if lerr != nil {
			return nil, lerr
		}
		o.printf("waiting for the peer on %s\n", ln.Addr())
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		conn, err = ln.Accept()
		stop()
		ln.Close()
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", o.connect)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := newCtrl(conn)
	listener := o.listen != ""
	var hello ctrlMsg
	if listener {
		if hello, err = c.expect("hello"); err != nil {
			return nil, err
		}
		o.n, o.srtpMode, o.suite, o.rtcp = hello.N, hello.SRTP, hello.Suite, hello.RTCP
		o.duration = time.Duration(hello.DurationMs)*time.Millisecond + 10*time.Second // ended by "stop"
		if err := o.checkSRTP(); err != nil {
			return nil, err
		}
	}
	m, err := o.newManager("loadtest-" + map[bool]string{true: "listen", false: "connect"}[listener])
	if err != nil {
		return nil, err
	}
	defer m.Close()
	var fp dtlssrtp.Fingerprint
	if o.srtpMode == "dtls" {
		fp, _ = m.Fingerprint()
	}
	r := newReport(o, map[bool]string{true: "listen", false: "connect"}[listener], o.n)
	r.sampleBaseline()
	eps := make([]*endpoint, o.n)
	for i := range eps {
		eps[i] = &endpoint{idx: i, ssrc: uint32(0x10000 + i)}
	}
	defer closeAll(eps)
	setupStart := time.Now()
	sctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	openAll(sctx, o, m, eps)
	infos := make([]peerInfo, len(eps))
	for i, e := range eps {
		if e.failure() != nil || e.s == nil {
			return r, fmt.Errorf("stream %d: %w", i, errors.Join(e.failure(), errNotUp))
		}
		infos[i] = e.info(fp)
	}
	configure := func(peers []peerInfo, role dtlssrtp.Role) error {
		if len(peers) != len(eps) {
			return fmt.Errorf("control: %d peers for %d streams", len(peers), len(eps))
		}
		for i, e := range eps {
			if err := e.configure(peers[i], o, role); err != nil {
				e.setErr(err)
			}
		}
		return nil
	}
	if listener {
		// Configure (and start the DTLS servers) before answering, so that the
		// client's first flight finds them listening.
		if err := configure(hello.Peers, dtlssrtp.Server); err != nil {
			return r, err
		}
		if err := c.send(ctrlMsg{Type: "answer", Peers: infos}); err != nil {
			return r, err
		}
	} else {
		err := c.send(ctrlMsg{Type: "hello", N: o.n, SRTP: o.srtpMode, Suite: o.suite, RTCP: o.rtcp,
			DurationMs: o.duration.Milliseconds(), Peers: infos})
		if err != nil {
			return r, err
		}
		ans, err := c.expect("answer")
		if err != nil {
			return r, err
		}
		if err := configure(ans.Peers, dtlssrtp.Client); err != nil {
			return r, err
		}
	}
	if o.srtpMode == "dtls" {
		watchSecure(sctx, eps)
	}
	r.setupDone(eps, time.Since(setupStart))
	o.printf("setup: %d/%d streams up, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed\n",
		r.Setup.Up, r.Setup.Streams, r.Setup.P50Ms, r.Setup.P99Ms, r.Setup.MaxMs, r.Setup.Failed)
	mctx, mcancel := context.WithCancel(ctx)
	defer mcancel()
	if listener {
		if _, err := c.expect("start"); err != nil {
			return r, err
		}
		go func() { // "stop" or a closed connection ends the run
			_, _ = c.expect("stop")
			mcancel()
		}()
	} else if err := c.send(ctrlMsg{Type: "start"}); err != nil {
		return r, err
	}
	err = runMedia(mctx, o, r, eps)
	if !listener {
		_ = c.send(ctrlMsg{Type: "stop"})
	}
	return r, err
}
