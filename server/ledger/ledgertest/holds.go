package ledgertest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"campuspay/server/ledger"
)

func hold(key string, a ledger.AccountID, amount int64) ledger.Hold {
	return ledger.Hold{Key: key, Account: a, Amount: amount, Expires: T0.Add(time.Hour), Memo: "shower " + key, At: T0}
}

func testHolds(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	const w, m = ledger.AccountID("wallet:1"), ledger.AccountID("merchant:shower")
	at := T0.Add(10 * time.Minute)

	type step struct {
		do       func() error
		wantErr  error
		posted   int64 // wallet after the step
		held     int64
		merchant int64
	}
	var info ledger.HoldInfo
	var res ledger.Result
	keep := func(i ledger.HoldInfo, err error) error { // remember the hold of the last success
		if err == nil {
			info = i
		}
		return err
	}
	place := func(key string, amount int64) func() error {
		return func() error { return keep(s.PlaceHold(ctx, hold(key, w, amount))) }
	}
	capture := func(key string, amount int64, to ledger.AccountID) func() error {
		return func() error {
			i, r, err := s.CaptureHold(ctx, key, amount, to, "metered", at)
			if err == nil {
				res = r
			}
			return keep(i, err)
		}
	}
	void := func(key string) func() error {
		return func() error { return keep(s.VoidHold(ctx, key, at)) }
	}
	expect := func(state ledger.HoldState, captured int64) func() error {
		return func() error {
			if info.State != state || info.Captured != captured {
				t.Fatalf("hold %q: state %v captured %d, want %v %d", info.Key, info.State, info.Captured, state, captured)
			}
			got, err := s.GetHold(ctx, info.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != state || got.Captured != captured || got.Account != w || got.Key != info.Key ||
				got.Amount != info.Amount || !got.Expires.Equal(info.Expires) || !got.At.Equal(T0) || got.Memo != "shower "+info.Key {
				t.Fatalf("GetHold %+v, returned %+v", got, info)
			}
			return nil
		}
	}
	dup := func(want bool) func() error {
		return func() error {
			if res.Duplicate != want || res.Key != ledger.CaptureKey(info.Key) || res.ID <= 0 {
				t.Fatalf("capture result %+v, want duplicate=%v", res, want)
			}
			return nil
		}
	}

	fund(t, s, w, 5000)
	for i, st := range []step{
		// Full capture.
		{do: place("h1", 1500), posted: 5000, held: 1500},
		{do: expect(ledger.HoldActive, 0), posted: 5000, held: 1500},
		{do: place("h1", 1500), posted: 5000, held: 1500}, // idempotent
		{do: place("h1", 1400), wantErr: ledger.ErrKeyConflict, posted: 5000, held: 1500},
		{do: capture("h1", 1501, m), wantErr: ledger.ErrOverCapture, posted: 5000, held: 1500},
		{do: expect(ledger.HoldActive, 0), posted: 5000, held: 1500},
		{do: capture("h1", 1500, w), wantErr: ledger.ErrInvalid, posted: 5000, held: 1500},
		{do: capture("h1", 1500, m), posted: 3500, merchant: 1500},
		{do: expect(ledger.HoldCaptured, 1500), posted: 3500, merchant: 1500},
		{do: dup(false), posted: 3500, merchant: 1500},
		{do: capture("h1", 1500, m), posted: 3500, merchant: 1500}, // idempotent
		{do: dup(true), posted: 3500, merchant: 1500},
		{do: capture("h1", 1000, m), wantErr: ledger.ErrHoldClosed, posted: 3500, merchant: 1500},
		{do: capture("h1", 1500, "merchant:other"), wantErr: ledger.ErrKeyConflict, posted: 3500, merchant: 1500},
		{do: void("h1"), wantErr: ledger.ErrHoldClosed, posted: 3500, merchant: 1500},
		{do: place("h1", 1500), posted: 3500, merchant: 1500}, // repeat of a captured hold: no new hold
		{do: expect(ledger.HoldCaptured, 1500), posted: 3500, merchant: 1500},

		// Partial capture releases the rest.
		{do: place("h2", 1500), posted: 3500, held: 1500, merchant: 1500},
		{do: capture("h2", 420, m), posted: 3080, merchant: 1920},
		{do: expect(ledger.HoldCaptured, 420), posted: 3080, merchant: 1920},

		// Void, idempotent; capture after void refused.
		{do: place("h3", 2000), posted: 3080, held: 2000, merchant: 1920},
		{do: void("h3"), posted: 3080, merchant: 1920},
		{do: expect(ledger.HoldVoided, 0), posted: 3080, merchant: 1920},
		{do: void("h3"), posted: 3080, merchant: 1920},
		{do: capture("h3", 10, m), wantErr: ledger.ErrHoldClosed, posted: 3080, merchant: 1920},

		// Capture of zero is a void.
		{do: place("h4", 100), posted: 3080, held: 100, merchant: 1920},
		{do: capture("h4", 0, m), posted: 3080, merchant: 1920},
		{do: expect(ledger.HoldVoided, 0), posted: 3080, merchant: 1920},
		{do: capture("h4", 0, m), posted: 3080, merchant: 1920},

		// Not found, not enough, not a wallet.
		{do: capture("nope", 1, m), wantErr: ledger.ErrHoldNotFound, posted: 3080, merchant: 1920},
		{do: void("nope"), wantErr: ledger.ErrHoldNotFound, posted: 3080, merchant: 1920},
		{do: place("h5", 3081), wantErr: ledger.ErrInsufficient, posted: 3080, merchant: 1920},
		{do: func() (err error) { _, err = s.PlaceHold(ctx, hold("h6", m, 1)); return }, wantErr: ledger.ErrInvalid, posted: 3080, merchant: 1920},
		{do: func() (err error) { _, err = s.PlaceHold(ctx, hold("h7", w, 0)); return }, wantErr: ledger.ErrInvalid, posted: 3080, merchant: 1920},
		{do: func() (err error) { _, err = s.GetHold(ctx, "h5"); return }, wantErr: ledger.ErrHoldNotFound, posted: 3080, merchant: 1920},
		{do: place("h5", 3080), posted: 3080, held: 3080, merchant: 1920}, // all of it
		{do: capture("h5", 3080, m), posted: 0, merchant: 5000},
	} {
		err := st.do()
		wantErr(t, "step "+strconv.Itoa(i), err, st.wantErr)
		wantBalance(t, s, w, st.posted, st.held)
		wantBalance(t, s, m, st.merchant, 0)
	}
	if tr, r, found, err := s.Lookup(ctx, ledger.CaptureKey("h2")); err != nil || !found || tr.Kind != "capture" ||
		tr.Memo != "metered" || !tr.At.Equal(at) || r.ID <= 0 ||
		len(tr.Postings) != 2 || tr.Postings[0] != (ledger.Posting{Account: w, Amount: -420}) || tr.Postings[1] != (ledger.Posting{Account: m, Amount: 420}) {
		t.Fatalf("capture transfer of h2: %+v %+v found=%v err=%v", tr, r, found, err)
	}
	if _, _, found, _ := s.Lookup(ctx, ledger.CaptureKey("h4")); found {
		t.Fatal("a capture of zero posted a transfer")
	}
}

// testHoldLimitsAvailable: a hold reserves money that payments and other
// holds cannot take, while the posted balance is unchanged.
func testHoldLimitsAvailable(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	const w = ledger.AccountID("wallet:1")
	fund(t, s, w, 2000)
	if _, err := s.PlaceHold(ctx, hold("a", w, 1500)); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, w, 2000, 1500)
	_, err := s.Post(ctx, pay("p1", w, "merchant:M", 501))
	wantErr(t, "pay over available", err, ledger.ErrInsufficient)
	_, err = s.PlaceHold(ctx, hold("b", w, 501))
	wantErr(t, "hold over available", err, ledger.ErrInsufficient)
	if _, err := s.Post(ctx, pay("p2", w, "merchant:M", 500)); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, w, 1500, 1500)
	// The hold is still fully capturable.
	if _, _, err := s.CaptureHold(ctx, "a", 1500, "merchant:shower", "", T0); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, w, 0, 0)
}

func testExpire(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	const w = ledger.AccountID("wallet:1")
	fund(t, s, w, 1000)
	for i, d := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute} {
		h := hold(keyf("e", i), w, 100)
		h.Expires = T0.Add(d)
		if _, err := s.PlaceHold(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		now  time.Duration
		n    int
		held int64
	}{
		{30 * time.Second, 0, 300},
		{time.Minute, 1, 200}, // Expires ≤ now
		{time.Minute, 0, 200},
		{10 * time.Minute, 2, 0},
	} {
		n, err := s.ExpireHolds(ctx, T0.Add(tc.now))
		if err != nil || n != tc.n {
			t.Fatalf("expire at +%v: %d, %v; want %d", tc.now, n, err, tc.n)
		}
		wantBalance(t, s, w, 1000, tc.held)
		if n, held, err := s.ActiveHolds(ctx); err != nil || held != tc.held || n != int(tc.held/100) {
			t.Fatalf("active holds at +%v: %d holding %d, %v; want %d holding %d", tc.now, n, held, err, tc.held/100, tc.held)
		}
	}
	h, err := s.GetHold(ctx, "e-0")
	if err != nil || h.State != ledger.HoldExpired {
		t.Fatalf("expired hold: %+v %v", h, err)
	}
	_, _, err = s.CaptureHold(ctx, "e-0", 50, "merchant:M", "", T0)
	wantErr(t, "capture expired", err, ledger.ErrHoldClosed)
	if h, err := s.VoidHold(ctx, "e-0", T0); err != nil || h.State != ledger.HoldExpired {
		t.Fatalf("void expired: %+v %v", h, err)
	}
	wantBalance(t, s, w, 1000, 0)
}
