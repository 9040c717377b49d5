package wallet

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"campuspay/protocol"
)

// RosterEntry is one line of the school's roster.
type RosterEntry struct {
	StudentNo string
	Name      string
	IDNumber  string
	Phone     string
	Category  string
	Campus    string // a campus id ("yungu") or its name ("云谷")
	CardUID   string
	Password  string // initial app login password
	Line      int    // where it comes from (file line), for messages; 0 if none
}

// ImportOutcome is what importing one roster entry did.
type ImportOutcome int

const (
	ImportNew       ImportOutcome = iota + 1 // a new student
	ImportUpdated                            // roster fields of an existing student changed
	ImportUnchanged                          // the student exists with exactly these fields
)

func (o ImportOutcome) String() string {
	switch o {
	case ImportNew:
		return "new"
	case ImportUpdated:
		return "updated"
	case ImportUnchanged:
		return "unchanged"
	}
	return "failed"
}

// ImportStudent imports one entry (ImportEntry) and reports whether the
// student is new.
func (s *Service) ImportStudent(ctx context.Context, e RosterEntry) (bool, error) {
	o, err := s.ImportEntry(ctx, e)
	return o == ImportNew, err
}

// ImportRoster imports the entries of one roster file and calls report
// for each, in order. Entries sharing a student number or a card are
// refused all (ErrRosterDuplicate naming the other lines): which of them
// is right is for the school to say, and merging them would give one
// person's wallet another's name, ID and card. The others are imported
// one by one (ImportEntry); a failing entry does not stop the rest.
func (s *Service) ImportRoster(ctx context.Context, entries []RosterEntry, report func(i int, o ImportOutcome, err error)) error {
	dup := rosterDuplicates(entries)
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := dup[i]; err != nil {
			report(i, 0, err)
			continue
		}
		o, err := s.ImportEntry(ctx, e)
		report(i, o, err)
	}
	return nil
}

// rosterDuplicates finds the entries that share a student number or a card
// UID with another, each with an error naming the others' lines.
func rosterDuplicates(entries []RosterEntry) map[int]error {
	byNo, byCard := map[string][]int{}, map[string][]int{}
	for i, e := range entries {
		if no := strings.TrimSpace(e.StudentNo); no != "" {
			byNo[no] = append(byNo[no], i)
		}
		if uid, ok := NormalizeCardUID(e.CardUID); ok {
			byCard[uid] = append(byCard[uid], i)
		}
	}
	notes := map[int][]string{}
	add := func(groups map[string][]int, zh, en string) {
		for key, idx := range groups {
			if len(idx) < 2 {
				continue
			}
			for _, i := range idx {
				var others []string
				for _, j := range idx {
					if j != i {
						others = append(others, lineName(entries, j))
					}
				}
				o := strings.Join(others, ", ")
				notes[i] = append(notes[i], fmt.Sprintf("%s %s 也在第 %s 行 / %s %s also on line %s", zh, key, o, en, key, o))
			}
		}
	}
	add(byNo, "学号", "student number")
	add(byCard, "卡号", "card")
	out := map[int]error{}
	for i, n := range notes {
		sort.Strings(n)
		out[i] = fmt.Errorf("%s: %w", strings.Join(n, "; "), protocol.ErrRosterDuplicate)
	}
	return out
}

func lineName(entries []RosterEntry, i int) string {
	if entries[i].Line > 0 {
		return fmt.Sprint(entries[i].Line)
	}
	return fmt.Sprintf("#%d", i+1)
}

// campusID resolves a campus given by id or by its (unique) name.
func (s *Service) campusID(c string) (string, error) {
	c = strings.TrimSpace(c)
	if _, ok := s.cfg.Campuses[c]; ok {
		return c, nil
	}
	var found []string
	for id, cp := range s.cfg.Campuses {
		if cp.Name != "" && cp.Name == c {
			found = append(found, id)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return "", fmt.Errorf("campus %q: %w", c, protocol.ErrRosterCampus)
}

// ImportEntry validates e and creates the student, or updates the roster
// fields of an existing one (wallet state and passwords are kept, so a
// re-import changes nothing a student did); an entry equal to what is
// stored writes nothing.
func (s *Service) ImportEntry(ctx context.Context, e RosterEntry) (ImportOutcome, error) {
	e.StudentNo = strings.TrimSpace(e.StudentNo)
	e.Name = strings.TrimSpace(e.Name)
	e.IDNumber = strings.ToUpper(strings.TrimSpace(e.IDNumber))
	e.Phone = strings.TrimSpace(e.Phone)
	e.Category = strings.TrimSpace(e.Category)
	switch {
	case !validStudentNo(e.StudentNo):
		return 0, fmt.Errorf("student number %q: %w", e.StudentNo, protocol.ErrRosterStudentNo)
	case e.Name == "" || len(e.Name) > 64:
		return 0, fmt.Errorf("name %q: %w", e.Name, protocol.ErrRosterName)
	case !ValidIDNumber(e.IDNumber):
		return 0, protocol.ErrIDNumberInvalid
	case !ValidPhone(e.Phone):
		return 0, protocol.ErrPhoneInvalid
	case e.Password == "" || len(e.Password) > 72:
		return 0, protocol.ErrRosterPassword
	}
	campus, err := s.campusID(e.Campus)
	if err != nil {
		return 0, err
	}
	uid := ""
	if strings.TrimSpace(e.CardUID) != "" {
		var ok bool
		if uid, ok = NormalizeCardUID(e.CardUID); !ok {
			return 0, fmt.Errorf("card UID %q: %w", e.CardUID, protocol.ErrRosterCardUID)
		}
		if other, err := s.st.UserByCard(ctx, uid); err == nil && other.StudentNo != e.StudentNo {
			return 0, fmt.Errorf("card %s is registered to %s: %w", uid, other.StudentNo, protocol.ErrRosterCardTaken)
		} else if err != nil && !errors.Is(err, protocol.ErrCardUnknown) {
			return 0, err
		}
	}
	u := &User{
		StudentNo: e.StudentNo, Name: e.Name, IDNumber: e.IDNumber, Phone: e.Phone,
		Category: e.Category, Campus: campus, CardUID: uid, State: StateInactive,
		LimitPerTx: s.cfg.DefaultLimitPerTx, LimitDaily: s.cfg.DefaultLimitDaily,
	}
	old, err := s.st.UserByStudentNo(ctx, e.StudentNo)
	switch {
	case err == nil:
		if old.Name == u.Name && old.IDNumber == u.IDNumber && old.Phone == u.Phone && old.Category == u.Category &&
			old.Campus == u.Campus && old.CardUID == u.CardUID {
			return ImportUnchanged, nil
		}
		u.LoginHash = old.LoginHash // a re-import does not reset a password (and skips bcrypt)
	case errors.Is(err, protocol.ErrUserUnknown):
		if u.LoginHash, err = s.hash(e.Password); err != nil {
			return 0, err
		}
	default:
		return 0, err
	}
	created, err := s.st.UpsertRosterUser(ctx, u)
	if err != nil {
		return 0, fmt.Errorf("wallet: import %s: %w", e.StudentNo, err)
	}
	if created {
		return ImportNew, nil
	}
	return ImportUpdated, nil
}
