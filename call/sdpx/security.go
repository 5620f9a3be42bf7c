package sdpx

import "strings"

// Security is how a media line is protected, as its transport protocol tells.
type Security int

// The security modes.
const (
	// Plain is unprotected RTP (RTP/AVP, RTP/AVPF).
	Plain Security = iota
	// SDES is SRTP keyed by a=crypto lines (RTP/SAVP, RTP/SAVPF; RFC 4568).
	SDES
	// DTLS is SRTP keyed by a DTLS handshake (UDP/TLS/RTP/SAVP(F); RFC 5763, RFC 5764).
	DTLS
)

// String returns "plain", "sdes" or "dtls".
func (s Security) String() string {
	switch s {
	case SDES:
		return "sdes"
	case DTLS:
		return "dtls"
	}
	return "plain"
}

// Proto returns the m= line transport protocol for s: "RTP/AVP", "RTP/SAVP"
// or "UDP/TLS/RTP/SAVP".
func (s Security) Proto() string {
	switch s {
	case SDES:
		return "RTP/SAVP"
	case DTLS:
		return "UDP/TLS/RTP/SAVP"
	}
	return "RTP/AVP"
}

// SecurityOf maps an m= line protocol to a Security; ok is false for a
// protocol that is not RTP (e.g. "UDP/DTLS/SCTP").
func SecurityOf(proto string) (s Security, ok bool) {
	switch strings.ToUpper(proto) {
	case "RTP/AVP", "RTP/AVPF":
		return Plain, true
	case "RTP/SAVP", "RTP/SAVPF":
		return SDES, true
	case "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF":
		return DTLS, true
	}
	return Plain, false
}
