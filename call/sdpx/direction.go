package sdpx

// Direction is the media direction attribute of RFC 3264 §5.1.
type Direction int

// The directions. The zero value is SendRecv, the default when SDP has none.
const (
	// SendRecv sends and receives.
	SendRecv Direction = iota
	// SendOnly only sends (puts the peer on hold).
	SendOnly
	// RecvOnly only receives.
	RecvOnly
	// Inactive neither sends nor receives.
	Inactive
)

var directionNames = [...]string{"sendrecv", "sendonly", "recvonly", "inactive"}

// String returns the SDP attribute name, e.g. "sendonly".
func (d Direction) String() string {
	if d >= 0 && int(d) < len(directionNames) {
		return directionNames[d]
	}
	return "sendrecv"
}

// ParseDirection maps an attribute name to a Direction.
func ParseDirection(s string) (Direction, bool) {
	for i, n := range directionNames {
		if n == s {
			return Direction(i), true
		}
	}
	return SendRecv, false
}

// Reverse returns the direction an answerer mirrors for an offered direction
// (RFC 3264 §6.1): sendonly <-> recvonly; sendrecv and inactive stay.
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// Sends reports whether the direction allows sending.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the direction allows receiving.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// Combine returns the direction that honours both our wish local and what the
// peer's offered direction remote allows us (RFC 3264 §6.1): we send only if
// both want it, receive only if both allow it.
func Combine(local, remote Direction) Direction {
	r := remote.Reverse()
	send := local.Sends() && r.Sends()
	recv := local.Receives() && r.Receives()
	switch {
	case send && recv:
		return SendRecv
	case send:
		return SendOnly
	case recv:
		return RecvOnly
	}
	return Inactive
}
