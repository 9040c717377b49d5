package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"campuspay/server/ledger"
	"campuspay/server/ledger/sqlite"
)

// A top-up, a canteen payment and a shower paid through a hold.
func Example() {
	dir, _ := os.MkdirTemp("", "ledger")
	defer os.RemoveAll(dir)
	s, err := sqlite.Open(filepath.Join(dir, "ledger.db"), sqlite.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

	s.Post(ctx, ledger.Transfer{Key: "topup-1", Kind: "topup", At: now, Postings: []ledger.Posting{
		{Account: "bank:CCB", Amount: -5000}, {Account: "wallet:1001", Amount: 5000}}})
	s.Post(ctx, ledger.Transfer{Key: "T01-000017", Kind: "payment", Memo: "canteen 3", At: now, Postings: []ledger.Posting{
		{Account: "wallet:1001", Amount: -1250}, {Account: "merchant:M001", Amount: 1250}}})

	s.PlaceHold(ctx, ledger.Hold{Key: "S07-000003", Account: "wallet:1001", Amount: 1500, Expires: now.Add(time.Hour), At: now})
	b, _ := s.Balance(ctx, "wallet:1001")
	fmt.Printf("during the shower: posted %d, held %d, available %d\n", b.Posted, b.Held, b.Available)

	s.CaptureHold(ctx, "S07-000003", 420, "merchant:shower", "shower 7", now.Add(9*time.Minute))
	b, _ = s.Balance(ctx, "wallet:1001")
	fmt.Printf("after it: posted %d, held %d, available %d\n", b.Posted, b.Held, b.Available)

	r, _ := s.Post(ctx, ledger.Transfer{Key: "T01-000017", Kind: "payment", Memo: "canteen 3", At: now, Postings: []ledger.Posting{
		{Account: "wallet:1001", Amount: -1250}, {Account: "merchant:M001", Amount: 1250}}})
	fmt.Println("retry is a duplicate:", r.Duplicate)

	rep, _ := s.Check(ctx)
	fmt.Println("check ok:", rep.OK(), "sum:", rep.Sum)
	// Output:
	// during the shower: posted 3750, held 1500, available 2250
	// after it: posted 3330, held 0, available 3330
	// retry is a duplicate: true
	// check ok: true sum: 0
}
