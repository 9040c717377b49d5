package bank_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	banksim "campuspay/hwsim/bank"
	"campuspay/server/bank"
)

var fixedNow = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

const (
	zhang = "6217001234000010" // CCB, 张三, ¥1000.00
	li    = "6217001234000028" // CCB, 李四, ¥5.00
	qian  = "6216611234000017" // BOC, frozen
)

func setup(t *testing.T, mod func(*bank.HTTPConfig)) (*banksim.Sim, *bank.HTTPClient) {
	t.Helper()
	sim, url := start(t)
	return sim, client(t, url, mod)
}

// start runs a simulator holding the fixture accounts on loopback.
func start(t *testing.T) (*banksim.Sim, string) {
	return startAt(t, func() time.Time { return fixedNow })
}

// startAt is start on the clock now.
func startAt(t *testing.T, now func() time.Time) (*banksim.Sim, string) {
	t.Helper()
	accts, err := banksim.LoadAccounts("../../hwsim/bank/testdata/accounts.csv")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := banksim.New(banksim.Config{
		Clients:  map[string]string{"campus": "s3cret"},
		Accounts: accts,
		Now:      now,
	})
	if err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, url
}

func client(t *testing.T, url string, mod func(*bank.HTTPConfig)) *bank.HTTPClient {
	t.Helper()
	cfg := bank.HTTPConfig{
		BaseURL: url, ClientID: "campus", Secret: "s3cret",
		Timeout: 5 * time.Second, Attempts: 3, Backoff: time.Millisecond,
		Now: func() time.Time { return fixedNow },
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := bank.NewHTTPClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerify(t *testing.T) {
	_, c := setup(t, nil)
	ok := bank.Holder{BankCode: "CCB", CardNumber: zhang, Name: "张三", IDNumber: "11010520000101123X", Phone: "13800000001"}
	for _, tc := range []struct {
		name  string
		edit  func(*bank.Holder)
		want  error
		field string
	}{
		{"match", func(*bank.Holder) {}, nil, ""},
		{"lower-case x in ID", func(h *bank.Holder) { h.IDNumber = "11010520000101123x" }, nil, ""},
		{"name", func(h *bank.Holder) { h.Name = "张四" }, nil, bank.FieldName},
		{"id", func(h *bank.Holder) { h.IDNumber = "110105200001011230" }, nil, bank.FieldIDNumber},
		{"phone", func(h *bank.Holder) { h.Phone = "13900000001" }, nil, bank.FieldPhone},
		{"unknown card", func(h *bank.Holder) { h.CardNumber = banksim.LuhnComplete("621700000000000") }, bank.ErrUnknownCard, ""},
		{"bad Luhn", func(h *bank.Holder) { h.CardNumber = "6217001234000011" }, bank.ErrInvalidCardNumber, ""},
		{"bank not served", func(h *bank.Holder) { h.BankCode = "HSBC" }, bank.ErrUnsupportedBank, ""},
		{"missing phone", func(h *bank.Holder) { h.Phone = "" }, bank.ErrBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := ok
			tc.edit(&h)
			err := c.Verify(context.Background(), h)
			if tc.field != "" {
				var me *bank.MismatchError
				if !errors.As(err, &me) || me.Field != tc.field {
					t.Fatalf("err = %v, want mismatch of %s", err, tc.field)
				}
				return
			}
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDebitCredit(t *testing.T) {
	sim, c := setup(t, nil)
	ctx := context.Background()
	r, err := c.Debit(ctx, "topup-1", "CCB", zhang, 2500)
	if err != nil {
		t.Fatal(err)
	}
	if r.Key != "topup-1" || r.Op != "debit" || r.Amount != 2500 || r.Ref == "" || !r.Time.Equal(fixedNow) {
		t.Fatalf("receipt %+v", r)
	}
	if _, err := c.Credit(ctx, "withdraw-1", "CCB", zhang, 1000); err != nil {
		t.Fatal(err)
	}
	if bal, _ := sim.Balance("CCB", zhang); bal != 100000-2500+1000 {
		t.Fatalf("balance %d", bal)
	}
	// Repeating a key returns the original receipt and moves nothing.
	again, err := c.Debit(ctx, "topup-1", "CCB", zhang, 2500)
	if err != nil || again != r {
		t.Fatalf("repeat: %+v, %v; want %+v", again, err, r)
	}
	if bal, _ := sim.Balance("CCB", zhang); bal != 100000-2500+1000 {
		t.Fatalf("balance %d after repeat", bal)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"insufficient", func() error { _, err := c.Debit(ctx, "d-li", "CCB", li, 501); return err }, bank.ErrInsufficientFunds},
		{"frozen debit", func() error { _, err := c.Debit(ctx, "d-qian", "BOC", qian, 1); return err }, bank.ErrDeclined},
		{"frozen credit", func() error { _, err := c.Credit(ctx, "c-qian", "BOC", qian, 1); return err }, bank.ErrDeclined},
		{"key reused, other amount", func() error { _, err := c.Debit(ctx, "topup-1", "CCB", zhang, 2600); return err }, bank.ErrKeyConflict},
		{"key reused, other op", func() error { _, err := c.Credit(ctx, "topup-1", "CCB", zhang, 2500); return err }, bank.ErrKeyConflict},
		{"zero amount", func() error { _, err := c.Credit(ctx, "z", "CCB", zhang, 0); return err }, bank.ErrBadRequest},
		{"unknown card", func() error {
			_, err := c.Debit(ctx, "u", "CCB", banksim.LuhnComplete("621700000000000"), 1)
			return err
		}, bank.ErrUnknownCard},
	} {
		if err := tc.call(); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A declined debit is not remembered: the same key succeeds once funded.
	if _, err := c.Credit(ctx, "fund-li", "CCB", li, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Debit(ctx, "d-li", "CCB", li, 501); err != nil {
		t.Fatalf("debit after funding: %v", err)
	}
	if bal, _ := sim.Balance("CCB", li); bal != 0 {
		t.Fatalf("li balance %d", bal)
	}
}

func TestDroppedResponseAppliesOnce(t *testing.T) {
	sim, c := setup(t, nil)
	sim.DropNext(1)
	r, err := c.Debit(context.Background(), "drop-1", "CCB", zhang, 700)
	if err != nil {
		t.Fatal(err)
	}
	if r.Amount != 700 {
		t.Fatalf("receipt %+v", r)
	}
	if bal, _ := sim.Balance("CCB", zhang); bal != 100000-700 {
		t.Fatalf("balance %d: applied more than once", bal)
	}
	if st := sim.Stats(); st.Applied != 1 || st.Requests < 2 {
		t.Fatalf("stats %+v: want 1 applied over ≥2 requests", st)
	}
}

func TestUnavailableThenSuccess(t *testing.T) {
	sim, c := setup(t, nil)
	sim.FailNext(2, 503)
	if _, err := c.Credit(context.Background(), "c-503", "CCB", zhang, 300); err != nil {
		t.Fatal(err)
	}
	if st := sim.Stats(); st.Requests != 3 || st.Applied != 1 {
		t.Fatalf("stats %+v", st)
	}
	// More failures than attempts: no definite answer, nothing applied.
	sim.FailNext(3, 502)
	if _, err := c.Credit(context.Background(), "c-502", "CCB", zhang, 300); !errors.Is(err, bank.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if bal, _ := sim.Balance("CCB", zhang); bal != 100000+300 {
		t.Fatalf("balance %d", bal)
	}
}

func TestTimeoutRetries(t *testing.T) {
	sim, url := start(t)
	impatient := client(t, url, func(cfg *bank.HTTPConfig) { cfg.Timeout = 50 * time.Millisecond; cfg.Attempts = 2 })
	sim.SetDelay(time.Hour) // each attempt times out; the sim abandons the call when the client goes
	if _, err := impatient.Debit(context.Background(), "slow", "CCB", zhang, 1); !errors.Is(err, bank.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	sim.SetDelay(0)
	if _, err := client(t, url, nil).Debit(context.Background(), "slow", "CCB", zhang, 1); err != nil {
		t.Fatal(err)
	}
	if st := sim.Stats(); st.Applied != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBadSignatureRefused(t *testing.T) {
	sim, c := setup(t, func(cfg *bank.HTTPConfig) { cfg.Secret = "wrong" })
	if _, err := c.Debit(context.Background(), "k", "CCB", zhang, 100); !errors.Is(err, bank.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if st := sim.Stats(); st.Requests != 1 || st.Applied != 0 {
		t.Fatalf("stats %+v: a refused signature must not be retried or applied", st)
	}
	_, c = setup(t, func(cfg *bank.HTTPConfig) { cfg.ClientID = "stranger" })
	if err := c.Verify(context.Background(), bank.Holder{BankCode: "CCB", CardNumber: zhang, Name: "a", IDNumber: "b", Phone: "c"}); !errors.Is(err, bank.ErrUnauthorized) {
		t.Fatalf("unknown client: err = %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	sim, c := setup(t, nil)
	sim.FailNext(100, 503)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Debit(ctx, "k", "CCB", zhang, 1); !errors.Is(err, bank.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

// Concurrent repeats of one key, as from several authorizers, move money once.
func TestConcurrentSameKey(t *testing.T) {
	sim, c := setup(t, nil)
	var wg sync.WaitGroup
	receipts := make([]bank.Receipt, 8)
	errs := make([]error, 8)
	for i := range receipts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			receipts[i], errs[i] = c.Debit(context.Background(), "same", "CCB", zhang, 999)
		}()
	}
	wg.Wait()
	for i := range receipts {
		if errs[i] != nil || receipts[i] != receipts[0] {
			t.Fatalf("call %d: %+v %v (first %+v)", i, receipts[i], errs[i], receipts[0])
		}
	}
	if bal, _ := sim.Balance("CCB", zhang); bal != 100000-999 {
		t.Fatalf("balance %d", bal)
	}
}
