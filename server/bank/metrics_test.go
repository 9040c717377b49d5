package bank

import (
	"context"
	"errors"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	banksim "campuspay/hwsim/bank"
)

// Every attempt is timed and counted by result, retries included.
func TestMetrics(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	accts, err := banksim.LoadAccounts("../../hwsim/bank/testdata/accounts.csv")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := banksim.New(banksim.Config{Clients: map[string]string{"campus": "s3cret"}, Accounts: accts, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c, err := NewHTTPClient(HTTPConfig{BaseURL: url, ClientID: "campus", Secret: "s3cret", Backoff: time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	count := func(result string) float64 {
		var m dto.Metric
		requestsTotal.WithLabelValues("debit", result).Write(&m)
		return m.GetCounter().GetValue()
	}
	samples := func() uint64 {
		var m dto.Metric
		requestSeconds.WithLabelValues("debit").(interface{ Write(*dto.Metric) error }).Write(&m)
		return m.GetHistogram().GetSampleCount()
	}
	ok0, unav0, ref0 := count("ok"), count("unavailable"), count("refused")
	obs0 := samples()

	sim.FailNext(2, 503)
	if _, err := c.Debit(context.Background(), "m-1", "CCB", "6217001234000010", 100); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Debit(context.Background(), "m-2", "CCB", "6217001234000028", 501); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatal(err)
	}
	if d := count("ok") - ok0; d != 1 {
		t.Errorf("ok +%v, want +1", d)
	}
	if d := count("unavailable") - unav0; d != 2 {
		t.Errorf("unavailable +%v, want +2", d)
	}
	if d := count("refused") - ref0; d != 1 {
		t.Errorf("refused +%v, want +1", d)
	}
	if d := samples() - obs0; d != 4 {
		t.Errorf("%d latency samples, want 4 (one per attempt)", d)
	}
}
