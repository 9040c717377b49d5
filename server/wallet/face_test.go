package wallet_test

import (
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet/wallettest"
)

// Face payment is a reserved slot: the credential kind exists, the
// password-free contract gates it like a card tap, and it is refused
// today with FACE_NOT_SUPPORTED. Nothing is charged either way.
func TestFacePaymentReservedAndRefused(t *testing.T) {
	e := wallettest.New(t)
	free := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00, PasswordFree: true})
	plain := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
	inactive := e.AddStudent(wallettest.Options{Inactive: true})
	if protocol.KindFace.String() != "face" || protocol.Classify("2024001") == protocol.KindFace {
		t.Fatalf("face kind %v", protocol.KindFace)
	}
	for _, tc := range []struct {
		name, text string
		want       *protocol.Reason
	}{
		{"without the password-free contract", plain.No, protocol.ErrPasswordFreeMissing},
		{"with the contract", free.No, protocol.ErrFaceNotSupported},
		{"inactive wallet", inactive.No, protocol.ErrWalletNotActive},
		{"no such student", "99999999", protocol.ErrUserUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: wallettest.POS, At: e.Clock.Now(), Amount: 5_00,
				Cred: &protocol.Credential{Kind: protocol.CredFace, Text: tc.text}}
			if err := req.Validate(); err != nil {
				t.Fatalf("a face request does not validate: %v", err)
			}
			wantResp(t, e.Svc.HandleRequest(ctx, req), protocol.StatusDeclined, tc.want)
		})
	}
	if e.Balance(free) != 20_00 || e.Balance(plain) != 20_00 {
		t.Fatalf("face refusals charged: %d %d", e.Balance(free), e.Balance(plain))
	}
	e.Check()
}
