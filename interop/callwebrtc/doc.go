// Package callwebrtc tests the call layer (package call) against
// pion/webrtc/v4 as a second, foreign WebRTC peer: a browser-style trickle
// offer (no candidates), a BUNDLE re-offer adding a track, and the peer's
// close ending the call. It is a nested module so that the library does not
// depend on pion/webrtc.
package callwebrtc
