package phone_test

import (
	"testing"

	"campuspay/hwsim/phone"
	"campuspay/protocol"
	"campuspay/server/wallet/wallettest"
)

// A student who forgot the payment password resets it with the code the
// bank texts, read from the simulator's outbox over HTTP; the phone then
// confirms sensitive actions with the new one.
func TestResetPaymentPasswordBySMS(t *testing.T) {
	e, base := backend(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 10_00})
	ph := phone.NewWith(base, s.No, s.Password, phone.Options{Now: e.Clock.Now, Rand: seeded(2)})
	c := ctx(t)
	ph.UsePaymentPassword("000000")
	_, err := ph.SignPasswordFree(c)
	want(t, "sign with a forgotten password", err, protocol.ErrPaymentPasswordWrong)
	rc, err := ph.SendResetCode(c, "payment")
	want(t, "reset code", err, nil)
	code, err := phone.LastSMSCode(c, nil, e.BankURL, s.Phone)
	want(t, "read the SMS", err, nil)
	_, err = ph.ResetPassword(c, "payment", rc.OTPID, code, "864202")
	want(t, "reset", err, nil)
	w, err := ph.SignPasswordFree(c)
	want(t, "sign with the new password", err, nil)
	if !w.PasswordFree {
		t.Fatalf("wallet %+v", w)
	}
	if _, err := phone.LastSMSCode(c, nil, e.BankURL, "13900000000"); err == nil {
		t.Fatal("an SMS for a number never texted")
	}
	w, err = ph.ReportCardLost(c)
	want(t, "card lost", err, nil)
	if !w.CardLost {
		t.Fatalf("card not lost: %+v", w)
	}
	w, err = ph.ReportCardFound(c)
	want(t, "card found", err, nil)
	if w.CardLost {
		t.Fatalf("card still lost: %+v", w)
	}
}
