package phone

import (
	"testing"

	"campuspay/protocol"
)

// reason turns any error body into an error without panicking, and a known
// code into the protocol's own value.
func FuzzReason(f *testing.F) {
	f.Add(422, []byte(`{"code":"WALLET_NOT_ACTIVE","message_zh":"x","message_en":"y"}`))
	f.Add(418, []byte(`{"code":"NEW","message_zh":"新","message_en":"new"}`))
	f.Add(502, []byte(`<html>`))
	f.Add(400, []byte(`{"code":""}`))
	f.Add(500, []byte(`{"code":1}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := reason(status, body)
		if err == nil {
			t.Fatal("nil error")
		}
		if r, ok := err.(*protocol.Reason); ok {
			if r.Code == "" {
				t.Fatal("reason without a code")
			}
			if k := protocol.ReasonByCode(r.Code); k != nil && k != r {
				t.Fatalf("known code %s returned as a copy", r.Code)
			}
		}
	})
}
