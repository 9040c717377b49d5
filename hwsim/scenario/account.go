package scenario

import (
	"fmt"

	"campuspay/hwsim/phone"
	"campuspay/protocol"
)

// --- account and security (issue 15) -------------------------------------

// account: a student forgets the payment password, is refused and locked
// out of nothing but tries, proves who she is again through the code her
// bank texts to the card's reserved phone (read from the bank simulator's
// outbox, as she reads the SMS), sets a new one; the same code cannot be
// used twice. Then she reports her card lost and found again (解挂), both
// confirmed with the new password, and a per-payment limit above the
// daily one is refused.
func (d *day) account() error {
	ctx := d.ctx
	cj := d.s("2024005")
	cj.App.UsePaymentPassword("000000") // forgotten
	_, err := cj.App.SignPasswordFree(ctx)
	d.check(cj.Name, "app", "sign password-free with a forgotten payment password", 0, "", outcome(err), protocol.ErrPaymentPasswordWrong.Code)

	rc, err := cj.App.SendResetCode(ctx, "payment")
	d.check(cj.Name, "bank", "reset code texted to the reserved phone", 0, "", outcome(err), "ok")
	if err != nil {
		return fmt.Errorf("reset code: %w", err)
	}
	code, err := phone.LastSMSCode(ctx, nil, d.c.BankURL, cj.Phone) // she reads the SMS
	if err != nil {
		return err
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	_, err = cj.App.ResetPassword(ctx, "payment", rc.OTPID, wrong, "864202")
	d.check(cj.Name, "app", "reset with a wrong SMS code", 0, "", outcome(err), protocol.ErrOTPWrong.Code)
	_, err = cj.App.ResetPassword(ctx, "payment", rc.OTPID, code, "864202")
	d.check(cj.Name, "app", "reset the payment password with the SMS code ("+rc.Phone+")", 0, "", outcome(err), "ok")
	_, err = cj.App.ResetPassword(ctx, "payment", rc.OTPID, code, "975313")
	d.check(cj.Name, "app", "the same SMS code again", 0, "", outcome(err), protocol.ErrOTPUsed.Code)

	w, err := cj.App.ReportCardLost(ctx)
	d.check(cj.Name, "app", "report the campus card lost (new payment password)", 0, "", outcome(err), "ok")
	if err == nil && !w.CardLost {
		d.check(cj.Name, "app", "card shown as lost", 0, "", "not lost", "lost")
	}
	w, err = cj.App.ReportCardFound(ctx)
	d.check(cj.Name, "app", "card found again (解挂)", 0, "", outcome(err), "ok")
	if err == nil && w.CardLost {
		d.check(cj.Name, "app", "card shown as found", 0, "", "lost", "not lost")
	}
	_, err = cj.App.SetLimits(ctx, 300_00, 200_00)
	d.check(cj.Name, "app", "per-payment limit above the daily limit", 0, "", outcome(err), protocol.ErrLimitsOrder.Code)
	return nil
}
