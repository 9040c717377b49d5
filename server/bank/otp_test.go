package bank_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	banksim "campuspay/hwsim/bank"
	"campuspay/server/bank"
)

// movable is a clock the bank and the client share.
type movable struct {
	mu sync.Mutex
	t  time.Time
}

func (m *movable) now() time.Time          { m.mu.Lock(); defer m.mu.Unlock(); return m.t }
func (m *movable) advance(d time.Duration) { m.mu.Lock(); m.t = m.t.Add(d); m.mu.Unlock() }

// TestOTP: a code texted to the reserved phone is good once, within its
// lifetime and its tries, and only for its card.
func TestOTP(t *testing.T) {
	clk := &movable{t: fixedNow}
	sim, url := startAt(t, clk.now)
	c := client(t, url, func(cfg *bank.HTTPConfig) { cfg.Now = clk.now })
	ctx := t.Context()
	const phone = "13800000001" // 张三's reserved phone in the fixture

	send := func() bank.OTP {
		t.Helper()
		o, err := c.SendOTP(ctx, "CCB", zhang, "重置支付密码")
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := send()
	if o.Phone != "138****0001" || !o.Expires.Equal(fixedNow.Add(banksim.OTPTTL)) {
		t.Fatalf("otp %+v", o)
	}
	code, ok := sim.LastCode(phone)
	if !ok || len(code) != 6 {
		t.Fatalf("outbox %+v", sim.Outbox(""))
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if _, err := c.SendOTP(ctx, "CCB", zhang, "x"); !errors.Is(err, bank.ErrOTPTooSoon) {
		t.Fatalf("second send at once: %v", err)
	}
	for _, tc := range []struct {
		name     string
		card, id string
		code     string
		want     error
	}{
		{"wrong", zhang, o.ID, wrong, bank.ErrOTPWrong},
		{"another card", li, o.ID, code, bank.ErrUnknownOTP},
		{"unknown id", zhang, "OTP999", code, bank.ErrUnknownOTP},
		{"right", zhang, o.ID, code, nil},
		{"reused", zhang, o.ID, code, bank.ErrOTPUsed},
	} {
		if err := c.CheckOTP(ctx, "CCB", tc.card, tc.id, tc.code); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	// Expired: past its lifetime even the right code is refused.
	clk.advance(banksim.OTPInterval)
	o = send()
	code, _ = sim.LastCode(phone)
	clk.advance(banksim.OTPTTL)
	if err := c.CheckOTP(ctx, "CCB", zhang, o.ID, code); !errors.Is(err, bank.ErrOTPExpired) {
		t.Fatalf("expired: %v", err)
	}

	// Locked after OTPTries wrong codes, right one included afterwards.
	o = send()
	code, _ = sim.LastCode(phone)
	for i := 1; i <= banksim.OTPTries; i++ {
		want := bank.ErrOTPWrong
		if i == banksim.OTPTries {
			want = bank.ErrOTPLocked
		}
		if err := c.CheckOTP(ctx, "CCB", zhang, o.ID, wrong); !errors.Is(err, want) {
			t.Fatalf("wrong try %d: %v", i, err)
		}
	}
	if err := c.CheckOTP(ctx, "CCB", zhang, o.ID, code); !errors.Is(err, bank.ErrOTPLocked) {
		t.Fatalf("right code after the lock: %v", err)
	}

	// A new code replaces the old one.
	clk.advance(banksim.OTPInterval)
	old := send()
	oldCode, _ := sim.LastCode(phone)
	clk.advance(banksim.OTPInterval)
	send()
	if err := c.CheckOTP(ctx, "CCB", zhang, old.ID, oldCode); !errors.Is(err, bank.ErrOTPUsed) {
		t.Fatalf("replaced code: %v", err)
	}
	if _, err := c.SendOTP(ctx, "CCB", "6217001234000036", "x"); !errors.Is(err, bank.ErrUnknownCard) && !errors.Is(err, bank.ErrInvalidCardNumber) {
		t.Fatalf("unknown card: %v", err)
	}
}
