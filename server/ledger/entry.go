package ledger

import "time"

// AppendEntryRow folds one row of a listing query — a transfer's columns
// and one of its postings, rows in transfer then leg order — into es: a
// new Entry when the transfer ID changes, else one more posting on the
// last.
func AppendEntryRow(es []Entry, id int64, key, kind, memo string, at time.Time, account string, amount int64) []Entry {
	if len(es) == 0 || es[len(es)-1].ID != id {
		es = append(es, Entry{
			Transfer: Transfer{Key: key, Kind: kind, Memo: memo, At: at},
			Result:   Result{ID: id, Key: key, At: at},
		})
	}
	e := &es[len(es)-1]
	e.Postings = append(e.Postings, Posting{Account: AccountID(account), Amount: amount})
	return es
}
