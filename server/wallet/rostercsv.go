package wallet

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"campuspay/protocol"
)

// RosterColumns is the number of columns of a roster file: student number,
// name, ID number, phone, category, campus (id or name), card UID, initial
// password.
const RosterColumns = 8

// RosterLineError is a line of a roster file that could not be read.
type RosterLineError struct {
	Line      int
	StudentNo string // "" when the line could not be split
	Err       error  // wraps a *protocol.Reason
}

// ParseRoster reads a roster file (CSV with a header line, RosterColumns
// columns) into entries; lines that cannot be read are returned as errors
// (a CSV error, a wrong number of columns) and the rest goes on. lines
// counts the lines after the header. err is a reading error only.
func ParseRoster(r io.Reader) (entries []RosterEntry, bad []RosterLineError, lines int, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = false
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, nil, lines, fmt.Errorf("roster: %w", err)
			}
			bad = append(bad, RosterLineError{Line: pe.Line, Err: fmt.Errorf("CSV 格式错误 / CSV error: %v: %w", pe.Err, protocol.ErrBadRequest)})
			lines++
			continue
		}
		if first {
			continue // header
		}
		line, _ := cr.FieldPos(0) // only after a record was read: it panics after an error
		lines++
		if len(rec) != RosterColumns {
			bad = append(bad, RosterLineError{Line: line, StudentNo: rec[0], Err: fmt.Errorf("%d columns: %w", len(rec), protocol.ErrRosterColumns)})
			continue
		}
		entries = append(entries, RosterEntry{StudentNo: strings.TrimSpace(rec[0]), Name: rec[1], IDNumber: rec[2],
			Phone: rec[3], Category: rec[4], Campus: rec[5], CardUID: rec[6], Password: rec[7], Line: line})
	}
	return entries, bad, lines, nil
}
