package webterminal

import (
	"context"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"
)

// Mode is how a terminal registers: which of the two streams it opens.
type Mode int

const (
	// Pipe registers for one call at a time; call_id is ignored on the wire.
	Pipe Mode = iota
	// MultiPipe registers for many concurrent calls; every message carries the
	// call's UUID in call_id.
	MultiPipe
)

// String returns "Pipe" or "MultiPipe".
func (m Mode) String() string {
	switch m {
	case Pipe:
		return "Pipe"
	case MultiPipe:
		return "MultiPipe"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// MetadataMSISDN is the gRPC metadata key under which a terminal names the
// msisdn it serves when it registers (the proto has no registration message).
const MetadataMSISDN = "x-webterminal-msisdn"

// MSISDNFromContext returns the msisdn a terminal put in its stream's
// metadata (MetadataMSISDN); it is the Core's default identification.
func MSISDNFromContext(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(MetadataMSISDN); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// validCallID reports whether id is a UUID in its canonical textual form.
func validCallID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}
