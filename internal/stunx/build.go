package stunx

import "github.com/pion/stun/v2"

// Software is the SOFTWARE attribute value put into requests built here.
const Software = "reflow-go"

// NewBindingRequest builds a Binding request with a fresh random transaction
// ID, SOFTWARE "reflow-go" and FINGERPRINT.
func NewBindingRequest() (*stun.Message, error) {
	return stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewSoftware(Software), stun.Fingerprint)
}

// NewBindingIndication builds a Binding indication (RFC 8489 §6.3.2, the
// keep-alive that needs no answer) with a fresh transaction ID and
// FINGERPRINT.
func NewBindingIndication() (*stun.Message, error) {
	return stun.Build(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication), stun.Fingerprint)
}
