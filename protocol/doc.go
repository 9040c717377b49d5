// Package protocol is the contract between the terminals and the central
// authorizer, and the only package both sides import. It holds:
//
//   - the campus codes: wallet payment and identity codes (device
//     certificate + Ed25519 device signature, base45 text for QR
//     alphanumeric mode) and the static merchant QR (code.go, merchantqr.go);
//   - the classifier for any scanned text (classify.go);
//   - the MQTT topic tree and JSON messages (topics.go, messages.go);
//   - terminal transaction IDs, the idempotency key of every payment (txid.go);
//   - reason codes with stable codes and Chinese + English messages
//     (reason.go);
//   - sealing of keypad secrets to the authorizer's key (seal.go);
//   - money in integer cents (money.go).
//
// Byte layouts, the topic tree and sequence diagrams are in README.md; the
// annotated test vectors in testdata/vectors.json are shared by the encoder
// tests, the decoder tests and the fuzz seeds.
//
// The package does no I/O and reads no clock: callers pass time in.
package protocol
