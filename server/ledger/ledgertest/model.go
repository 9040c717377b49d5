package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"campuspay/server/ledger"
)

// model is the ledger's rules in a few maps: the reference the store is
// compared with after every random operation.
type model struct {
	bal, held map[ledger.AccountID]int64
	transfers map[string]modelTransfer
	holds     map[string]*modelHold
}

type modelTransfer struct {
	hash [32]byte
	id   int64
}

type modelHold struct {
	info ledger.HoldInfo
	to   ledger.AccountID // counter-account of the capture
}

func (m *model) available(a ledger.AccountID) int64 { return m.bal[a] - m.held[a] }

// post predicts Post: the error it must return, or applies t.
func (m *model) post(t ledger.Transfer) (dup bool, id int64, err error) {
	if old, ok := m.transfers[t.Key]; ok {
		if old.hash != t.ContentHash() {
			return false, 0, ledger.ErrKeyConflict
		}
		return true, old.id, nil
	}
	net := map[ledger.AccountID]int64{}
	for _, p := range t.Postings {
		net[p.Account] += p.Amount
	}
	for a, d := range net {
		if a.Constrained() && d < 0 && m.available(a)+d < 0 {
			return false, 0, ledger.ErrInsufficient
		}
	}
	for a, d := range net {
		m.bal[a] += d
	}
	m.transfers[t.Key] = modelTransfer{hash: t.ContentHash()} // id filled in from the store
	return false, 0, nil
}

// testModel runs a few thousand random operations, with keys drawn from a
// small space so that retries, conflicts and closed holds are common, and
// compares every outcome and every balance with the model.
func testModel(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	rng := seeded(t)
	m := &model{
		bal: map[ledger.AccountID]int64{}, held: map[ledger.AccountID]int64{},
		transfers: map[string]modelTransfer{}, holds: map[string]*modelHold{},
	}
	wallets := []ledger.AccountID{"wallet:1", "wallet:2", "wallet:3"}
	merchants := []ledger.AccountID{"merchant:A", "merchant:B"}
	accounts := append(append([]ledger.AccountID{"bank:CCB"}, wallets...), merchants...)
	pick := func(as []ledger.AccountID) ledger.AccountID { return as[rng.IntN(len(as))] }
	now := T0
	outcomes := map[string]int{}
	var posted []ledger.Transfer // for retries
	var placed []string          // hold keys, for captures and voids
	holdKey := func() string {
		if len(placed) > 0 && rng.IntN(5) > 0 {
			return placed[rng.IntN(len(placed))]
		}
		return keyf("h", rng.IntN(3000))
	}
	const ops = 3000
	for i := range ops {
		var what string
		var err, want error
		switch op := rng.IntN(100); {
		case op < 60: // payment, wallet to wallet, or top-up
			tr := pay(keyf("k", rng.IntN(3000)), pick(wallets), pick(merchants), 1+rng.Int64N(500))
			switch {
			case len(posted) > 0 && rng.IntN(8) == 0: // a retry
				tr = posted[rng.IntN(len(posted))]
			case op < 5:
				tr.Postings[1].Account = pick(wallets)
			case op >= 45:
				tr = pay(tr.Key, "bank:CCB", pick(wallets), 1+rng.Int64N(1000))
				tr.Kind = "topup"
			}
			tr.At = now
			if tr.Postings[0].Account == tr.Postings[1].Account {
				continue
			}
			what = fmt.Sprintf("post %+v", tr)
			wantDup, wantID, werr := m.post(tr)
			want = werr
			var r ledger.Result
			r, err = s.Post(ctx, tr)
			if err == nil && werr == nil {
				if r.Duplicate != wantDup || (wantDup && r.ID != wantID) {
					t.Fatalf("op %d %s: result %+v, want duplicate=%v id=%d", i, what, r, wantDup, wantID)
				}
				if !wantDup {
					m.transfers[tr.Key] = modelTransfer{hash: tr.ContentHash(), id: r.ID}
					posted = append(posted, tr)
				}
			}
		case op < 75: // place a hold
			key := keyf("h", rng.IntN(3000))
			if len(placed) > 0 && rng.IntN(5) == 0 {
				key = placed[rng.IntN(len(placed))]
			}
			h := ledger.Hold{Key: key, Account: pick(wallets), Amount: 1 + rng.Int64N(800),
				Expires: now.Add(time.Duration(1+rng.IntN(10)) * time.Minute), At: now}
			what = fmt.Sprintf("hold %+v", h)
			var got ledger.HoldInfo
			got, err = s.PlaceHold(ctx, h)
			var wantInfo ledger.HoldInfo
			switch old, ok := m.holds[h.Key]; {
			case ok && (old.info.Account != h.Account || old.info.Amount != h.Amount):
				want = ledger.ErrKeyConflict
			case ok:
				wantInfo = old.info
			case m.available(h.Account) < h.Amount:
				want = ledger.ErrInsufficient
			default:
				wantInfo = ledger.HoldInfo{Hold: h, State: ledger.HoldActive}
				m.holds[h.Key] = &modelHold{info: wantInfo}
				placed = append(placed, h.Key)
				m.held[h.Account] += h.Amount
			}
			if err == nil && want == nil && (got.State != wantInfo.State || got.Captured != wantInfo.Captured || got.Amount != wantInfo.Amount) {
				t.Fatalf("op %d %s: got %+v, want %+v", i, what, got, wantInfo)
			}
		case op < 88: // capture
			key, amount, to := holdKey(), rng.Int64N(900), pick(merchants)
			what = fmt.Sprintf("capture %s %d to %s", key, amount, to)
			var got ledger.HoldInfo
			var r ledger.Result
			got, r, err = s.CaptureHold(ctx, key, amount, to, "", now)
			h := m.holds[key]
			switch {
			case h == nil:
				want = ledger.ErrHoldNotFound
			case h.info.State == ledger.HoldCaptured && h.info.Captured == amount && h.to != to:
				want = ledger.ErrKeyConflict
			case h.info.State == ledger.HoldCaptured && h.info.Captured == amount:
				if err == nil && !r.Duplicate {
					t.Fatalf("op %d %s: repeat not a duplicate: %+v", i, what, r)
				}
			case h.info.State == ledger.HoldVoided && amount == 0:
			case h.info.State != ledger.HoldActive:
				want = ledger.ErrHoldClosed
			case amount > h.info.Amount:
				want = ledger.ErrOverCapture
			case amount == 0:
				h.info.State = ledger.HoldVoided
				m.held[h.info.Account] -= h.info.Amount
			default:
				h.info.State, h.info.Captured, h.to = ledger.HoldCaptured, amount, to
				m.held[h.info.Account] -= h.info.Amount
				m.bal[h.info.Account] -= amount
				m.bal[to] += amount
			}
			if err == nil && want == nil && (got.State != h.info.State || got.Captured != h.info.Captured) {
				t.Fatalf("op %d %s: got %+v, want %+v", i, what, got, h.info)
			}
		case op < 96: // void
			key := holdKey()
			what = "void " + key
			var got ledger.HoldInfo
			got, err = s.VoidHold(ctx, key, now)
			h := m.holds[key]
			switch {
			case h == nil:
				want = ledger.ErrHoldNotFound
			case h.info.State == ledger.HoldCaptured:
				want = ledger.ErrHoldClosed
			case h.info.State == ledger.HoldActive:
				h.info.State = ledger.HoldVoided
				m.held[h.info.Account] -= h.info.Amount
			}
			if err == nil && want == nil && got.State != h.info.State {
				t.Fatalf("op %d %s: got %+v, want %+v", i, what, got, h.info)
			}
		default: // time passes; expire
			now = now.Add(time.Duration(rng.IntN(3)) * time.Minute)
			what = "expire at " + now.Format(time.TimeOnly)
			wantN := 0
			for _, h := range m.holds {
				if h.info.State == ledger.HoldActive && !h.info.Expires.After(now) {
					h.info.State = ledger.HoldExpired
					m.held[h.info.Account] -= h.info.Amount
					wantN++
				}
			}
			var n int
			n, err = s.ExpireHolds(ctx, now)
			if err == nil && n != wantN {
				t.Fatalf("op %d %s: expired %d, want %d", i, what, n, wantN)
			}
		}
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("op %d %s: error %v, want %v", i, what, err, want)
		}
		outcomes[outcome(err)]++
		for _, a := range accounts {
			wantBalance(t, s, a, m.bal[a], m.held[a])
		}
	}
	t.Logf("%d operations, %d transfers, %d holds; outcomes %v", ops, len(m.transfers), len(m.holds), outcomes)
}

// outcome names an error by the ledger sentinel it wraps, for the tally.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	for _, e := range []error{ledger.ErrInsufficient, ledger.ErrKeyConflict, ledger.ErrHoldNotFound,
		ledger.ErrHoldClosed, ledger.ErrOverCapture, ledger.ErrInvalid, ledger.ErrUnbalanced} {
		if errors.Is(err, e) {
			return strings.TrimPrefix(e.Error(), "ledger: ")
		}
	}
	return err.Error()
}
