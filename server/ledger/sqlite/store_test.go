package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"campuspay/server/ledger"
	"campuspay/server/ledger/ledgertest"
)

var t0 = ledgertest.T0

func openTemp(t testing.TB, opt Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ledger.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return s, path
}

func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Store {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func pay(key string, from, to ledger.AccountID, amount int64) ledger.Transfer {
	return ledger.Transfer{Key: key, Kind: "payment", At: t0,
		Postings: []ledger.Posting{{Account: from, Amount: -amount}, {Account: to, Amount: amount}}}
}

func mustPost(t testing.TB, s ledger.Store, tr ledger.Transfer) ledger.Result {
	t.Helper()
	r, err := s.Post(context.Background(), tr)
	if err != nil {
		t.Fatalf("post %s: %v", tr.Key, err)
	}
	return r
}

func TestPragmasAndReopen(t *testing.T) {
	s, path := openTemp(t, Options{})
	mustPost(t, s, pay("a", "bank:CCB", "wallet:1", 100))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Post(context.Background(), pay("b", "bank:CCB", "wallet:1", 1)); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("post after close: %v", err)
	}

	s2, err := Open(path, Options{}) // migrations already applied: a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	b, err := s2.Balance(context.Background(), "wallet:1")
	if err != nil || b.Posted != 100 {
		t.Fatalf("after reopen: %+v %v", b, err)
	}
	var version, tempStore int
	var mode string
	s2.wconn.QueryRowContext(context.Background(), "SELECT MAX(version) FROM schema_version").Scan(&version)
	s2.wconn.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode)
	s2.wconn.QueryRowContext(context.Background(), "PRAGMA temp_store").Scan(&tempStore)
	if latest, _ := LatestSchema(); version != latest || mode != "wal" || tempStore != 2 {
		t.Fatalf("schema version %d, journal mode %q, temp_store %d (2: statement journals in memory)", version, mode, tempStore)
	}
	// The read pool cannot write.
	if _, err := s2.rdb.Exec("DELETE FROM postings"); err == nil {
		t.Fatal("read-only pool accepted a write")
	}
	ledgertest.RequireOK(t, s2)
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	s, path := openTemp(t, Options{})
	if _, err := s.wconn.ExecContext(context.Background(), "INSERT INTO schema_version VALUES (99, 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := Open(path, Options{}); err == nil {
		s2.Close()
		t.Fatal("opened a ledger with a newer schema")
	}
}

// holdWriter returns block, which makes the writer take one operation (an
// ExpireHolds) and wait until release is called before it takes the rest
// of its batch; block returns once the writer is waiting. Operations
// submitted meanwhile queue up and land in that batch.
func holdWriter(t *testing.T, opt *Options) (block func(s *Store), release func()) {
	g := ledgertest.NewGate()
	opt.beforeBatch = g.Hook
	return func(s *Store) { g.Block(t, s) }, g.Release
}

// waitQueued waits until n operations sit in the writer's queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	ledgertest.WaitQueued(t, s.batcher.Queued, n)
}

// TestGroupCommitIsolatesFailures puts payments that fit and payments that
// do not into one transaction: each is decided on its own, in queue order.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	var opt Options
	block, release := holdWriter(t, &opt)
	s, _ := openTemp(t, opt)
	ctx := context.Background()
	mustPost(t, s, pay("fund", "bank:CCB", "wallet:1", 1000))
	before := s.Stats()

	block(s)
	type outcome struct {
		res ledger.Result
		err error
	}
	const n = 10
	out := make([]chan outcome, n)
	// 400 + 400 fit, the third 400 does not, 200 fits again; a conflicting
	// key and an unbalanced-by-constraint payment fail on their own.
	amounts := []int64{400, 400, 400, 200, 1, 1, 1, 1, 1, 1}
	for i := range n {
		out[i] = make(chan outcome, 1)
		go func() {
			r, err := s.Post(ctx, pay("p"+string(rune('a'+i)), "wallet:1", "merchant:M", amounts[i]))
			out[i] <- outcome{r, err}
		}()
		waitQueued(t, s, i+1) // keep queue order = i
	}
	release()
	var got []string
	for i := range n {
		o := <-out[i]
		switch {
		case o.err == nil:
			got = append(got, "ok")
		case errors.Is(o.err, ledger.ErrInsufficient):
			got = append(got, "insufficient")
		default:
			t.Fatalf("payment %d: %v", i, o.err)
		}
	}
	want := "ok ok insufficient ok insufficient insufficient insufficient insufficient insufficient insufficient"
	if strings.Join(got, " ") != want {
		t.Fatalf("outcomes %v, want %s", got, want)
	}
	st := s.Stats()
	if st.Batches-before.Batches != 1 || st.MaxBatch != n+1 {
		t.Fatalf("stats %+v (before %+v): want one batch of %d", st, before, n+1)
	}
	b, _ := s.Balance(ctx, "wallet:1")
	if b.Posted != 0 {
		t.Fatalf("wallet %+v, want 0", b)
	}
	ledgertest.RequireOK(t, s)
}

// TestFailedCommitFailsBatch makes a real COMMIT fail (a deferred foreign
// key violation planted in the transaction): every operation of the batch
// fails, none is applied, and the store goes on working.
func TestFailedCommitFailsBatch(t *testing.T) {
	var opt Options
	var sabotage sync.Mutex
	sabotaged := false
	opt.beforeCommit = func(c *sql.Conn) error {
		sabotage.Lock()
		defer sabotage.Unlock()
		if !sabotaged {
			return nil
		}
		sabotaged = false
		ctx := context.Background()
		if _, err := c.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
			return err
		}
		_, err := c.ExecContext(ctx, "INSERT INTO postings (transfer_id, leg, account, amount) VALUES (1, 99, 'no such account', 0.5)")
		return err
	}
	block, release := holdWriter(t, &opt)
	s, _ := openTemp(t, opt)
	ctx := context.Background()
	mustPost(t, s, pay("fund", "bank:CCB", "wallet:1", 1000))

	block(s)
	sabotage.Lock()
	sabotaged = true
	sabotage.Unlock()
	const n = 5
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.Post(ctx, pay("doomed"+string(rune('a'+i)), "wallet:1", "merchant:M", 10))
			errs <- err
		}()
	}
	waitQueued(t, s, n)
	release()
	for range n {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "commit") {
			t.Fatalf("operation in a failed batch: %v", err)
		}
	}
	for i := range n {
		if _, _, found, _ := s.Lookup(ctx, "doomed"+string(rune('a'+i))); found {
			t.Fatal("operation of a failed batch was applied")
		}
	}
	mustPost(t, s, pay("after", "wallet:1", "merchant:M", 10))
	b, _ := s.Balance(ctx, "wallet:1")
	if b.Posted != 990 {
		t.Fatalf("wallet %+v, want 990", b)
	}
	ledgertest.RequireOK(t, s)
}

// TestCloseDrainsQueue: operations queued before Close are committed and
// answered; Close returns after them.
func TestCloseDrainsQueue(t *testing.T) {
	var opt Options
	block, release := holdWriter(t, &opt)
	s, path := openTemp(t, opt)
	ctx := context.Background()
	block(s)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.Post(ctx, pay("q"+string(rune('a'+i)), "bank:CCB", "wallet:1", 5))
			errs <- err
		}()
	}
	waitQueued(t, s, n)
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("queued operation failed at close: %v", err)
		}
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	b, _ := s2.Balance(ctx, "wallet:1")
	if b.Posted != 5*n {
		t.Fatalf("after close and reopen: %+v, want %d", b, 5*n)
	}
}

// TestCheckFindsTampering edits the file behind the store's back and
// expects Check to name each kind of damage.
func TestCheckFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"balance edited", "UPDATE accounts SET balance = balance + 1 WHERE id = 'wallet:1'", "stored balance"},
		{"posting edited", "UPDATE postings SET amount = amount + 7 WHERE account = 'merchant:M'", "sums to 7"},
		{"posting deleted", "DELETE FROM postings WHERE account = 'merchant:M'", "has 1 legs"},
		{"wallet negative", "UPDATE postings SET amount = -2000 WHERE amount = -300; UPDATE postings SET amount = 2000 WHERE amount = 300;" +
			"UPDATE accounts SET balance = -1000 WHERE id = 'wallet:1'; UPDATE accounts SET balance = 2000 WHERE id = 'merchant:M'", "negative"},
		{"legs swapped", "UPDATE postings SET account = CASE account WHEN 'wallet:1' THEN 'merchant:M' ELSE 'wallet:1' END WHERE transfer_id = 2;" +
			"UPDATE accounts SET balance = 1300 WHERE id = 'wallet:1'; UPDATE accounts SET balance = -300 WHERE id = 'merchant:M'", "do not match"},
		{"held edited", "UPDATE accounts SET held = 0 WHERE id = 'wallet:1'", "stored held"},
		{"hold over-captured", "UPDATE holds SET captured = amount + 1 WHERE key = 'h2'", "hold \"h2\""},
		{"captured hold without money", "UPDATE holds SET transfer_id = NULL WHERE key = 'h2'", "hold \"h2\""},
		{"holds exceed balance", "UPDATE holds SET amount = 5000 WHERE key = 'h1'; UPDATE accounts SET held = 5000 WHERE id = 'wallet:1'", "exceed balance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openTemp(t, Options{})
			ctx := context.Background()
			mustPost(t, s, pay("fund", "bank:CCB", "wallet:1", 1000))
			mustPost(t, s, pay("p", "wallet:1", "merchant:M", 300))
			if _, err := s.PlaceHold(ctx, ledger.Hold{Key: "h1", Account: "wallet:1", Amount: 200, Expires: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.PlaceHold(ctx, ledger.Hold{Key: "h2", Account: "wallet:1", Amount: 100, Expires: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.CaptureHold(ctx, "h2", 60, "merchant:shower", "", t0); err != nil {
				t.Fatal(err)
			}
			ledgertest.RequireOK(t, s)

			raw, err := sql.Open("sqlite3", path+"?_busy_timeout=5000")
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			// Damage the file the way a bad hand edit would, past the
			// schema's own CHECKs.
			if _, err := raw.Exec("PRAGMA ignore_check_constraints = ON; PRAGMA foreign_keys = OFF; " + tc.sql); err != nil {
				t.Fatal(err)
			}
			r, err := s.Check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() {
				t.Fatalf("check passed a damaged ledger: %+v", r)
			}
			found := false
			for _, p := range r.Problems {
				found = found || strings.Contains(p, tc.want)
			}
			if !found {
				t.Fatalf("problems %q do not mention %q", r.Problems, tc.want)
			}
			t.Logf("found: %q", r.Problems)
		})
	}
}

// TestSchemaRefusesNegativeWallet: even a bug in the engine cannot commit
// a negative wallet, the schema refuses it.
func TestSchemaRefusesNegativeWallet(t *testing.T) {
	s, _ := openTemp(t, Options{})
	mustPost(t, s, pay("fund", "bank:CCB", "wallet:1", 10))
	_, err := s.wconn.ExecContext(context.Background(), "UPDATE accounts SET balance = -1 WHERE id = 'wallet:1'")
	if err == nil || !strings.Contains(err.Error(), "CHECK") {
		t.Fatalf("negative wallet written: %v", err)
	}
}

// TestCloseUnderLoad closes the store while callers keep posting: each
// either succeeds (and is in the file afterwards) or gets ErrClosed; none
// hangs.
func TestCloseUnderLoad(t *testing.T) {
	s, path := openTemp(t, Options{})
	ctx := context.Background()
	const callers = 32
	var mu sync.Mutex
	var acked []string
	started := make(chan struct{}, callers)
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			for n := 0; ; n++ {
				key := "c" + strconv.Itoa(g) + "-" + strconv.Itoa(n)
				_, err := s.Post(ctx, pay(key, "bank:CCB", "wallet:1", 1))
				if n == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, ledger.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("post %s: %v", key, err)
					return
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
			}
		})
	}
	for range callers {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, k := range acked {
		if _, _, found, err := s2.Lookup(ctx, k); err != nil || !found {
			t.Fatalf("acknowledged %s missing after close (err %v)", k, err)
		}
	}
	b, _ := s2.Balance(ctx, "wallet:1")
	if b.Posted != int64(len(acked)) {
		t.Fatalf("wallet has %d, %d payments acknowledged", b.Posted, len(acked))
	}
	ledgertest.RequireOK(t, s2)
}

func TestOpenRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-db")
	if err := os.WriteFile(path, []byte(strings.Repeat("this is not SQLite\n", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{}); err == nil {
		s.Close()
		t.Fatal("opened a file that is not a database")
	}
	if _, err := Open("x?mode=memory", Options{}); err == nil {
		t.Fatal("accepted a path with a query")
	}
}
