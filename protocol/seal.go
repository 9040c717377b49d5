package protocol

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/box"
)

// Keypad secrets (water password, payment password) are sealed on the
// terminal to the authorizer's X25519 public key (NaCl anonymous box) and
// bound to the transaction ID, so neither the broker, the journal nor a log
// ever holds them in clear, and a sealed secret cannot be replayed with
// another transaction.

// SealSecret seals secret for the authorizer, bound to tx. Pass nil rand for
// crypto/rand.
func SealSecret(authorizerKey *[32]byte, tx TxID, secret string, rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	msg := append([]byte(string(tx)+"\n"), secret...)
	out, err := box.SealAnonymous(nil, msg, authorizerKey, rnd)
	if err != nil {
		return "", fmt.Errorf("protocol: seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(out), nil
}

// OpenSecret opens a sealed secret and checks it was sealed for tx.
func OpenSecret(pub, priv *[32]byte, tx TxID, sealed string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", ErrBadRequest
	}
	msg, ok := box.OpenAnonymous(nil, raw, pub, priv)
	if !ok {
		return "", ErrBadRequest
	}
	got, secret, ok := bytes.Cut(msg, []byte("\n"))
	if !ok || string(got) != string(tx) {
		return "", ErrBadRequest
	}
	return string(secret), nil
}

// NewSealKey makes an X25519 key pair for the authorizer.
func NewSealKey(rnd io.Reader) (pub, priv *[32]byte, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	return box.GenerateKey(rnd)
}
