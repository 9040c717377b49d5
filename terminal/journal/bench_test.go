package journal

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"campuspay/protocol"
)

// BenchmarkPaymentJournal measures the journal writes of one payment
// (Created, Sent, Approved + entry: three synchronous commits) and reports
// its cost against a baseline measured in the same run: one bare
// synchronous=FULL single-row commit on the same disk. The ratio is what
// journal-first costs per payment in fsyncs (ideal: 3).
func BenchmarkPaymentJournal(b *testing.B) {
	ctx := context.Background()
	j, err := Open(filepath.Join(b.TempDir(), "j.db"), Options{Terminal: "T1"})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	if _, err := j.db.Exec(`CREATE TABLE bench (id INTEGER PRIMARY KEY, v INTEGER)`); err != nil {
		b.Fatal(err)
	}
	const baseN = 200
	start := time.Now()
	for i := 0; i < baseN; i++ {
		if _, err := j.db.Exec(`INSERT INTO bench (v) VALUES (?)`, i); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Since(start) / baseN

	ids := make([]protocol.TxID, b.N)
	for i := range ids {
		ids[i] = newID(b, time.UnixMilli(int64(1_700_000_000_000+i)))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := &Tx{ID: ids[i], Flow: FlowPay, Amount: 1250, CredKind: protocol.CredCode}
		if err := j.Create(ctx, t); err != nil {
			b.Fatal(err)
		}
		if err := j.Advance(ctx, t, StateSent); err != nil {
			b.Fatal(err)
		}
		t.Status = protocol.StatusApproved
		if err := j.Finish(ctx, t, StateApproved, protocol.EntryPayment); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(base), "commits/payment")
	b.ReportMetric(float64(base.Microseconds()), "µs/bare-commit")
}
