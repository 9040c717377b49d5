package bank

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// csvHeader is the required first row of an accounts CSV file; balance is in
// cents, frozen (optional column) is "true" or "false".
var csvHeader = []string{"bank_code", "card_number", "name", "id_number", "phone", "balance"}

// LoadAccounts reads an accounts fixture: a JSON array of Account (.json) or
// a CSV file with the header bank_code,card_number,name,id_number,phone,balance[,frozen].
func LoadAccounts(path string) ([]Account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("banksim: %w", err)
	}
	defer f.Close()
	var accts []Account
	if strings.EqualFold(filepath.Ext(path), ".json") {
		accts, err = ReadAccountsJSON(f)
	} else {
		accts, err = ReadAccountsCSV(f)
	}
	if err != nil {
		return nil, fmt.Errorf("banksim: %s: %w", path, err)
	}
	return accts, nil
}

// ReadAccountsJSON reads a JSON array of Account.
func ReadAccountsJSON(r io.Reader) ([]Account, error) {
	var accts []Account
	if err := json.NewDecoder(r).Decode(&accts); err != nil {
		return nil, fmt.Errorf("accounts JSON: %w", err)
	}
	return accts, nil
}

// ReadAccountsCSV reads accounts in the CSV layout described at LoadAccounts.
func ReadAccountsCSV(r io.Reader) ([]Account, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("accounts CSV header: %w", err)
	}
	if len(head) < len(csvHeader) {
		return nil, fmt.Errorf("accounts CSV header %v: want %v", head, csvHeader)
	}
	for i, h := range csvHeader {
		if strings.TrimSpace(strings.TrimPrefix(head[i], "\ufeff")) != h {
			return nil, fmt.Errorf("accounts CSV header %v: want %v", head, csvHeader)
		}
	}
	var accts []Account
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return accts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("accounts CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < len(csvHeader) {
			return nil, fmt.Errorf("accounts CSV line %d: %d fields, want %d", line, len(rec), len(csvHeader))
		}
		bal, err := strconv.ParseInt(strings.TrimSpace(rec[5]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("accounts CSV line %d: balance: %w", line, err)
		}
		a := Account{
			BankCode: strings.TrimSpace(rec[0]), CardNumber: strings.TrimSpace(rec[1]),
			Name: strings.TrimSpace(rec[2]), IDNumber: strings.TrimSpace(rec[3]),
			Phone: strings.TrimSpace(rec[4]), Balance: bal,
		}
		if len(rec) > 6 && strings.TrimSpace(rec[6]) != "" {
			if a.Frozen, err = strconv.ParseBool(strings.TrimSpace(rec[6])); err != nil {
				return nil, fmt.Errorf("accounts CSV line %d: frozen: %w", line, err)
			}
		}
		accts = append(accts, a)
	}
}
