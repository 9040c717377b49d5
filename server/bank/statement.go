package bank

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Refund implements Client.
func (c *HTTPClient) Refund(ctx context.Context, key, originalKey, bankCode, cardNumber string, amount int64) (Receipt, error) {
	if err := checkMove(originalKey, amount); err != nil {
		return Receipt{}, fmt.Errorf("bank: refund %s of %s: %w", key, originalKey, err)
	}
	return c.moveReq(ctx, "refund", moveRequest{Key: key, OriginalKey: originalKey, BankCode: bankCode, CardNumber: cardNumber, Amount: amount})
}

// Statement is the gateway's list of one day's movements for this client.
type Statement struct {
	Date    string           `json:"date"` // YYYY-MM-DD, China time
	Entries []StatementEntry `json:"entries"`
}

// StatementEntry is one applied debit, credit or refund.
type StatementEntry struct {
	Ref      string    `json:"ref"`
	Key      string    `json:"key"` // the caller's idempotency key
	Op       string    `json:"op"`  // "debit", "credit" or "refund"
	Amount   int64     `json:"amount"`
	Time     time.Time `json:"time"`
	BankCode string    `json:"bank_code"`
	Card     string    `json:"card"` // masked
}

// Statement downloads the day's statement (date YYYY-MM-DD, China time).
func (c *HTTPClient) Statement(ctx context.Context, date string) (*Statement, error) {
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return nil, fmt.Errorf("bank: statement %q: %w", date, ErrBadRequest)
	}
	resp, err := c.call(ctx, "/v1/statement", map[string]string{"date": date})
	if err != nil {
		return nil, fmt.Errorf("bank: statement %s: %w", date, err)
	}
	st, err := ParseStatement(bytes.NewReader(resp.raw))
	if err != nil {
		return nil, fmt.Errorf("bank: statement %s: %w", date, err)
	}
	if st.Date != date {
		return nil, fmt.Errorf("bank: statement for %s: got %s: %w", date, st.Date, ErrUnavailable)
	}
	return st, nil
}

// maxStatementEntries bounds a statement (a campus makes far fewer bank
// movements a day).
const maxStatementEntries = 1 << 20

// ParseStatement reads a statement answer: one JSON object with result OK,
// a date and entries, each with a ref, a 1–64 character key, an operation,
// a positive amount and a time. Anything else is refused.
func ParseStatement(r io.Reader) (*Statement, error) {
	var body struct {
		Result string `json:"result"`
		Statement
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("statement: data after the JSON object")
	}
	if body.Result != "OK" {
		return nil, fmt.Errorf("statement: result %q", body.Result)
	}
	if _, err := time.Parse(time.DateOnly, body.Date); err != nil {
		return nil, fmt.Errorf("statement: date %q", body.Date)
	}
	if len(body.Entries) > maxStatementEntries {
		return nil, fmt.Errorf("statement: %d entries", len(body.Entries))
	}
	seen := make(map[string]bool, len(body.Entries))
	for i, e := range body.Entries {
		switch {
		case e.Ref == "":
			return nil, fmt.Errorf("statement: entry %d: no ref", i)
		case checkMove(e.Key, e.Amount) != nil:
			return nil, fmt.Errorf("statement: entry %d: key %q amount %d", i, e.Key, e.Amount)
		case e.Op != "debit" && e.Op != "credit" && e.Op != "refund":
			return nil, fmt.Errorf("statement: entry %d: operation %q", i, e.Op)
		case e.Time.IsZero():
			return nil, fmt.Errorf("statement: entry %d: no time", i)
		case seen[e.Key]:
			return nil, fmt.Errorf("statement: entry %d: key %q twice", i, e.Key)
		}
		seen[e.Key] = true
	}
	if body.Entries == nil {
		body.Entries = []StatementEntry{}
	}
	return &body.Statement, nil
}

// Signed is the entry's amount as money into the campus: a debit of the
// card positive, a credit or refund negative.
func (e StatementEntry) Signed() int64 {
	if e.Op == "debit" {
		return e.Amount
	}
	return -e.Amount
}
