package sipp2p

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/reflow-go/reflow/call"
)

// Transport is a SIP transport.
type Transport string

// The transports.
const (
	// UDP is SIP over UDP.
	UDP Transport = "udp"
	// TCP is SIP over TCP.
	TCP Transport = "tcp"
	// TLS is SIP over TLS over TCP.
	TLS Transport = "tls"
)

func (t Transport) valid() bool { return t == UDP || t == TCP || t == TLS }

// sip returns sipgo's name of the transport ("UDP", "TCP", "TLS").
func (t Transport) sip() string { return strings.ToUpper(string(t)) }

// Mode says which way the endpoint carries requests.
type Mode int

// The modes.
const (
	// InboundAndOutbound receives and sends requests.
	InboundAndOutbound Mode = iota
	// InboundOnly receives requests: Call and SendMessage fail with ErrOutboundDisabled.
	InboundOnly
	// OutboundOnly sends requests: StartListening fails with ErrInboundDisabled
	// and requests arriving on our outgoing connections are answered 403.
	OutboundOnly
)

// TLSConfig is the endpoint's TLS identity and trust.
type TLSConfig struct {
	// Certificate is our certificate (with its private key): the server
	// certificate of TLS listeners and the client certificate of mutual TLS.
	Certificate *tls.Certificate
	// RootCAs verify peers' certificates (server certificates and, with
	// NeedMutualTLS, client certificates); nil means the system roots.
	RootCAs *x509.CertPool
	// NeedMutualTLS makes TLS listeners require and verify a client
	// certificate, and requires Certificate for outgoing TLS.
	NeedMutualTLS bool
	// ServerName overrides the name checked in the peer's certificate; ""
	// means the host of the target (or of the outbound proxy).
	ServerName string
}

// Config configures an Endpoint.
type Config struct {
	// URI is the endpoint's own SIP URI without port, e.g. "sip:alice@example.com";
	// its user part goes into From and Contact. Required.
	URI string
	// Agent is the call core that owns the calls. Required.
	Agent *call.Agent
	// Mode says whether the endpoint receives, sends or both.
	Mode Mode
	// Transport is the transport of outgoing requests whose target does not
	// name one; "" means TLS when TLS.Certificate is set, else UDP.
	Transport Transport
	// OutboundProxy, when valid, receives every out-of-dialog request
	// (INVITE, MESSAGE); otherwise requests go to the target URI's host.
	OutboundProxy netip.AddrPort
	// Advertise is the address put in Contact and Via. Zero means the
	// listener's address; it is required when listening on all addresses.
	Advertise netip.Addr
	// TLS is the TLS identity and trust; nil means no TLS.
	TLS *TLSConfig
	// Handler receives endpoint events; nil ignores them.
	Handler Handler
	// Logger receives log records (sipgo's included); nil discards them.
	Logger *slog.Logger
	// UserAgent is the User-Agent header; "" means "reflow-go".
	UserAgent string
	// AnswerTimeout bounds how long an outgoing call may ring, and how long an
	// incoming call without an Expires header may wait for the application
	// (then it is refused 480); zero means 3 minutes.
	AnswerTimeout time.Duration
	// MaxCalls bounds the calls the endpoint holds at once, incoming and
	// outgoing, ringing or established; an INVITE beyond it is refused 503
	// with Retry-After and Call returns ErrTooManyCalls. Every call holds a
	// media stream from its INVITE on, so this is also the bound on media
	// opened on behalf of remote requests. Zero means 32.
	MaxCalls int
	// MaxUnanswered bounds the incoming calls whose INVITE has no final
	// response yet (ringing or waiting for the application): each holds a
	// media stream, and with TURN an allocation, on behalf of a remote
	// request nobody has accepted. Beyond it INVITEs are refused 503 with
	// Retry-After. Zero means 8.
	MaxUnanswered int
	// RetryAfter is the Retry-After of a 503 refusal beyond MaxCalls; zero
	// means 30 seconds.
	RetryAfter time.Duration
	// T1 is the RFC 3261 round-trip estimate: 2xx responses are retransmitted
	// from T1 doubling to T2 until the ACK arrives, and a call whose 2xx is
	// not acknowledged within 64*T1 is ended with a BYE. Zero means 500 ms.
	T1 time.Duration
	// T2 caps the retransmission interval; zero means 4 s.
	T2 time.Duration
}

func (c *Config) validate() (sip.Uri, error) {
	var u sip.Uri
	if c.Agent == nil {
		return u, fmt.Errorf("%w: Agent is required", ErrInvalidConfig)
	}
	if err := sip.ParseUri(c.URI, &u); err != nil {
		return u, fmt.Errorf("%w: URI %q: %w", ErrInvalidConfig, c.URI, err)
	}
	if c.Transport != "" && !c.Transport.valid() {
		return u, fmt.Errorf("%w: transport %q", ErrInvalidConfig, c.Transport)
	}
	if c.Transport == "" {
		c.Transport = UDP
		if c.TLS != nil && c.TLS.Certificate != nil {
			c.Transport = TLS
		}
	}
	if c.Handler == nil {
		c.Handler = HandlerFuncs{}
	}
	if c.UserAgent == "" {
		c.UserAgent = "reflow-go"
	}
	if c.AnswerTimeout <= 0 {
		c.AnswerTimeout = 3 * time.Minute
	}
	if c.MaxCalls <= 0 {
		c.MaxCalls = 32
	}
	if c.MaxUnanswered <= 0 {
		c.MaxUnanswered = 8
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 30 * time.Second
	}
	if c.T1 <= 0 {
		c.T1 = 500 * time.Millisecond
	}
	if c.T2 <= 0 {
		c.T2 = 4 * time.Second
	}
	if c.T2 < c.T1 {
		c.T2 = c.T1
	}
	return u, nil
}

// State is the endpoint's state (the seed's endpoint states).
type State int

// The endpoint states.
const (
	// Idle: made, not yet listening or calling.
	Idle State = iota
	// Establishing: starting (binding a listener).
	Establishing
	// Established: ready to receive (when listening) and send.
	Established
	// Terminating: closing its calls and listeners.
	Terminating
	// Terminated: closed.
	Terminated
)

var stateNames = [...]string{"idle", "establishing", "established", "terminating", "terminated"}

// String returns the state's name.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Message is a SIP MESSAGE received by the endpoint (answered 200).
type Message struct {
	// From and To are the URIs of the From and To headers.
	From, To string
	// ContentType is the Content-Type header.
	ContentType string
	// Body is the message body.
	Body []byte
}

// Handler receives an endpoint's events, one at a time, in order, on a
// goroutine of the endpoint, never with a lock held.
type Handler interface {
	// OnStateChanged reports a state change; err says why when it is a failure.
	OnStateChanged(from, to State, err error)
	// OnMessage reports a SIP MESSAGE request.
	OnMessage(m Message)
}

// HandlerFuncs adapts functions to Handler; a nil function ignores its event.
type HandlerFuncs struct {
	// StateChanged implements OnStateChanged.
	StateChanged func(from, to State, err error)
	// Message implements OnMessage.
	Message func(m Message)
}

// OnStateChanged calls h.StateChanged.
func (h HandlerFuncs) OnStateChanged(from, to State, err error) {
	if h.StateChanged != nil {
		h.StateChanged(from, to, err)
	}
}

// OnMessage calls h.Message.
func (h HandlerFuncs) OnMessage(m Message) {
	if h.Message != nil {
		h.Message(m)
	}
}
