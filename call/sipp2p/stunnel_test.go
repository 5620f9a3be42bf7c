package sipp2p

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reflow-go/reflow/call"
	"github.com/reflow-go/reflow/internal/leak"
)

func needStunnel(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("stunnel")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("stunnel (Debian stunnel4) is required in CI")
		}
		t.Skip("stunnel not installed (Debian package stunnel4): skipping SIP over TLS with sipp")
	}
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startStunnel runs stunnel with one service until the test ends and
// waits until it accepts on port accept.
func startStunnel(ctx context.Context, t *testing.T, bin string, service string, accept int) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "stunnel.conf")
	body := fmt.Sprintf("foreground = yes\npid =\nsyslog = no\ndebug = 3\n[sip]\naccept = 127.0.0.1:%d\n%s", accept, service)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(sctx, bin, conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cancel(); <-exited })
	for range 100 { // bounded wait for stunnel to bind
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", accept), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("stunnel ended:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("stunnel does not listen:\n%s", out.String())
}

// TestSippTLS: sipp speaks TCP to stunnel, which speaks TLS to the
// endpoint: sipp calls the endpoint (T.38 line, re-INVITE, BYE), and the
// endpoint calls sipp, checking stunnel's certificate.
func TestSippTLS(t *testing.T) {
	leak.Check(t)
	sipp := needSipp(t)
	stunnel := needStunnel(t)
	ca := newCA(t)
	leafCert := ca.leaf(t, loopback, time.Now().Add(time.Hour))
	dir := t.TempDir()
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.cert.Raw)
	writePEM(t, filepath.Join(dir, "cert.pem"), "CERTIFICATE", leafCert.Certificate[0])
	kder, err := x509.MarshalECPrivateKey(leafCert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "key.pem"), "EC PRIVATE KEY", kder)
	tlsConf := func() *TLSConfig {
		return &TLSConfig{Certificate: ca.leaf(t, loopback, time.Now().Add(time.Hour)), RootCAs: ca.pool}
	}

	t.Run("uac", func(t *testing.T) {
		leak.Check(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b := newEP(t, Config{URI: "sip:ep@127.0.0.1", TLS: tlsConf()}, call.MediaConfig{})
		bound, err := b.StartListening(ctx, TLS, netip.AddrPortFrom(loopback, 0))
		if err != nil {
			t.Fatal(err)
		}
		accepted := autoAnswer(ctx, b)
		front := freePort(t, "tcp")
		startStunnel(ctx, t, stunnel, fmt.Sprintf("client = yes\nconnect = %s\nCAfile = %s\nverifyChain = yes\ncheckIP = 127.0.0.1\n",
			bound, filepath.Join(dir, "ca.pem")), front)
		var out bytes.Buffer
		for attempt := 0; ; attempt++ {
			cmd := sippCmd(ctx, t, sipp, "uac_reinvite.xml", TCP, freePort(t, "tcp"), freePort(t, "udp"), sippKeys(false), fmt.Sprintf("127.0.0.1:%d", front))
			out.Reset()
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if err == nil {
				break
			}
			if !sippBindFailed(err) || attempt == 2 {
				t.Fatalf("sipp: %v\n%s", err, tail(out.String()))
			}
		}
		select {
		case c := <-accepted:
			waitDone(t, ctx, c)
		case <-ctx.Done():
			t.Fatal("no call")
		}
	})

	t.Run("uas", func(t *testing.T) {
		leak.Check(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a := newEP(t, Config{URI: "sip:ep@127.0.0.1", TLS: tlsConf()}, call.MediaConfig{})
		a.listen(t, TLS)
		var out bytes.Buffer
		var exited chan error
		var c *call.Call
		for attempt := 0; ; attempt++ {
			sippPort, front := freePort(t, "tcp"), freePort(t, "tcp")
			keys := sippKeys(false)
			keys["contact"] = fmt.Sprintf("sip:sipp@127.0.0.1:%d;transport=tls", front)
			sctx, kill := context.WithCancel(ctx)
			defer kill()
			cmd := sippCmd(sctx, t, sipp, "uas_basic.xml", TCP, sippPort, freePort(t, "udp"), keys)
			out.Reset()
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited = make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			// stunnel connects to sipp for each connection it accepts: sipp
			// must listen first, or our call's TLS connection is reset.
			waitTCPListen(sippPort, 5*time.Second)
			startStunnel(ctx, t, stunnel, fmt.Sprintf("connect = 127.0.0.1:%d\ncert = %s\nkey = %s\n",
				sippPort, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")), front)
			var err error
			c, err = a.Call(ctx, fmt.Sprintf("sip:sipp@127.0.0.1:%d;transport=tls", front), nil)
			if err == nil {
				break
			}
			// sipp's output is read only once it has exited.
			kill()
			if werr := <-exited; !sippBindFailed(werr) || attempt == 2 {
				t.Fatalf("call: %v (sipp: %v)\n%s", err, werr, tail(out.String()))
			}
			// One of sipp's ports was taken again before it started: new ports.
		}
		waitState(t, ctx, c, call.Active)
		if err := c.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("sipp: %v\n%s", err, tail(out.String()))
			}
		case <-ctx.Done():
			t.Fatalf("sipp did not finish\n%s", tail(out.String()))
		}
	})
}

// waitTCPListen waits, at most d, until a socket listens on TCP port (read
// from /proc/net/tcp and tcp6, so that nothing connects to the listener).
func waitTCPListen(port int, d time.Duration) {
	want := fmt.Sprintf(":%04X ", port)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				fs := strings.Fields(line)
				if len(fs) > 3 && strings.HasSuffix(fs[1]+" ", want) && fs[3] == "0A" { // 0A: LISTEN
					return
				}
			}
		}
	}
}
