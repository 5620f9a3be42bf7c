// Package coturn starts a real coturn TURN server (the turnserver binary of
// the Debian package coturn) on loopback for interoperability tests.
//
//	srv, err := coturn.Start(ctx, t.TempDir())
//	if errors.Is(err, coturn.ErrNotInstalled) { t.Skip(...) }
//	defer srv.Close()
//	// srv.UDP and srv.TCP share one port; srv.TLS is another;
//	// srv.Username / srv.Password / srv.Realm are long-term credentials,
//	// srv.RootCAs and srv.ServerName verify the TLS listener.
//
// The server runs as a child process in the foreground with a generated
// configuration in the given directory: long-term credentials, a self-signed
// ECDSA certificate, listeners and relays on 127.0.0.1 only, loopback peers
// allowed, no CLI, no DTLS, and free ports picked at start. Its log goes to
// LogFile (coturn's own log) and to Stdout (its standard output and error).
//
// StartConfig also sets coturn's max-allocate-lifetime, channel-lifetime and
// permission-lifetime, for refresh tests; listens and relays on ::1 only
// (Config.IPv6) or adds ::1 as a second relay address (RelayIPv6Too); and
// refuses peers (DeniedPeers, coturn's denied-peer-ip). Kill kills the
// process (a server dying mid-call); Restart starts a fresh one on the same
// ports (a server restarted under its clients).
//
// Behaviour of coturn 4.6.1 worth knowing (the tests record it): it answers
// a Refresh for an allocation it does not have with 437 (pion/turn/v3 does
// not answer at all); it grants at most max-allocate-lifetime also when the
// client sends no LIFETIME; a session deallocated with LIFETIME 0 lingers
// until a timer frees it, and a Refresh in between still succeeds; it never
// exits when it cannot bind a listening port, it retries for ever (Start
// reads the log to notice); UDP and TCP share listening-port; Go's TLS client
// ends up with TLS 1.2 (ECDHE-ECDSA-AES256-GCM-SHA384).
//
// Start, Kill, Restart and Close may be called from any goroutine; Close is
// idempotent and returns after the process has exited.
package coturn
