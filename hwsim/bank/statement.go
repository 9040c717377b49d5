package bank

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// chinaTime is the zone of a statement's day; China keeps no daylight
// saving time.
var chinaTime = time.FixedZone("CST", 8*3600)

// validKey: 1–64 printable ASCII characters, as the protocol requires.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkRefund allows a refund of an earlier debit on the same card while
// the refunds stay within it; s.mu must be held.
func (s *Sim) checkRefund(req Request, ck cardKey) (answer, bool) {
	orig, ok := s.moves[req.OriginalKey]
	if !ok || orig.op != "debit" || orig.card != ck {
		return fail(http.StatusNotFound, codeOriginalUnknown, "no debit "+req.OriginalKey+" on this card"), false
	}
	if s.refunded[req.OriginalKey]+req.Amount > orig.amount {
		return fail(http.StatusUnprocessableEntity, codeRefundExceeds, "refunds would exceed the debit"), false
	}
	return answer{}, true
}

// StatementEntry is one line of a statement.
type StatementEntry struct {
	Ref      string    `json:"ref"`
	Key      string    `json:"key"`
	Op       string    `json:"op"`
	Amount   int64     `json:"amount"`
	Time     time.Time `json:"time"`
	BankCode string    `json:"bank_code"`
	Card     string    `json:"card"`
}

// Statement lists the movements applied for client on date (YYYY-MM-DD,
// China time), oldest first, less those skipped with SkipInStatement.
func (s *Sim) Statement(client, date string) ([]StatementEntry, error) {
	day, err := time.ParseInLocation(time.DateOnly, date, chinaTime)
	if err != nil {
		return nil, fmt.Errorf("banksim: date %q: %w", date, err)
	}
	end := day.AddDate(0, 0, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []StatementEntry{}
	for _, m := range s.order {
		t := m.receipt.Time
		if m.client != client || t.Before(day) || !t.Before(end) || s.skip[m.receipt.Key] {
			continue
		}
		out = append(out, StatementEntry{Ref: m.receipt.Ref, Key: m.receipt.Key, Op: m.op, Amount: m.amount,
			Time: t, BankCode: m.card.bank, Card: maskCard(m.card.card)})
	}
	return out, nil
}

// SkipInStatement leaves the movement with that key out of every
// statement: the bank "lost" it, a mismatch for reconciliation to find.
func (s *Sim) SkipInStatement(key string) {
	s.mu.Lock()
	if s.skip == nil {
		s.skip = map[string]bool{}
	}
	s.skip[key] = true
	s.mu.Unlock()
}

func maskCard(n string) string {
	if len(n) <= 8 {
		return "****"
	}
	return n[:4] + strings.Repeat("*", len(n)-8) + n[len(n)-4:]
}

// statement answers POST /v1/statement {"date":"YYYY-MM-DD"}.
func (s *Sim) statement(client string, body []byte) answer {
	var req struct {
		Date string `json:"date"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fail(http.StatusBadRequest, codeBadRequest, "body: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(http.StatusBadRequest, codeBadRequest, "body: data after the JSON object")
	}
	entries, err := s.Statement(client, req.Date)
	if err != nil {
		return fail(http.StatusBadRequest, codeBadRequest, err.Error())
	}
	return answer{http.StatusOK, map[string]any{"result": "OK", "date": req.Date, "entries": entries}}
}

func (s *Sim) controlSkip(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Key string `json:"key"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil || req.Key == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"key\":...}"})
		return
	}
	s.SkipInStatement(req.Key)
	writeJSON(w, http.StatusOK, map[string]string{"result": "OK"})
}
