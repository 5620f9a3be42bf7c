// Package callwebrtc tests the call layer (package call) against
// pion/webrtc/v4 as a second, foreign WebRTC peer: a browser-style trickle
// offer (no candidates), BUNDLE re-offers adding a track and a transceiver,
// an ICE restart that keeps the DTLS association, pion trickling its
// candidates to a full ICE call, pion trickling ours when we trickle
// (MediaConfig.Trickle), and the peer's close or disappearance ending the
// call. It is a nested module so that the library does not depend on
// pion/webrtc.
package callwebrtc
