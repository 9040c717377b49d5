package console

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// Roster import by upload: the desk uploads the school's roster (the CSV
// of `authorizer roster import`), the import runs in the background
// (wallet.ImportRoster) and the page polls its progress and per-line
// errors, in Chinese and English.

// MaxUpload bounds an uploaded roster (CSV).
const MaxUpload = 8 << 20

// maxRosterJobs bounds the imports kept for polling (the oldest finished
// ones are forgotten).
const maxRosterJobs = 20

// isUpload reports whether r carries a roster file rather than JSON.
func isUpload(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv")
}

func init() {
	addRoutes(
		Route{"POST", "/roster", desk, (*Console).uploadRoster},
		Route{"GET", "/roster/{id}", desk, (*Console).rosterProgress},
	)
}

// RosterLine is one refused line of an import.
type RosterLine struct {
	Line      int    `json:"line"`
	StudentNo string `json:"student_no"`
	Code      string `json:"code"`
	ZH        string `json:"message_zh"`
	EN        string `json:"message_en"`
	Detail    string `json:"detail,omitempty"`
}

// RosterJob is an import's progress.
type RosterJob struct {
	ID        string       `json:"id"`
	Lines     int          `json:"lines"` // lines after the header
	Total     int          `json:"total"` // entries to import
	Done      int          `json:"done"`
	New       int          `json:"new"`
	Updated   int          `json:"updated"`
	Unchanged int          `json:"unchanged"`
	Errors    []RosterLine `json:"errors"`
	Finished  bool         `json:"finished"`
	Failure   string       `json:"failure,omitempty"` // the import stopped (storage trouble)
}

type rosterJobs struct {
	mu    sync.Mutex
	jobs  map[string]*RosterJob
	order []string
}

// rosterLine describes a refused line as the CLI does (reason, then what
// exactly was wrong).
func rosterLine(line int, no string, err error) RosterLine {
	r := protocol.AsReason(err)
	l := RosterLine{Line: line, StudentNo: no, Code: r.Code, ZH: r.ZH, EN: r.EN}
	if d := strings.TrimSuffix(err.Error(), ": "+r.Error()); d != r.Error() {
		l.Detail = d
	}
	if !utf8.ValidString(l.StudentNo) {
		l.StudentNo = strings.ToValidUTF8(l.StudentNo, "?")
	}
	return l
}

// ImportRoster reads a roster file and imports it, calling progress after
// every entry with a snapshot; the audit log gets one entry at the end.
func (a *Actions) ImportRoster(ctx context.Context, actor Actor, file io.Reader, name string, progress func(RosterJob)) (RosterJob, error) {
	entries, bad, lines, err := wallet.ParseRoster(file)
	if err != nil {
		return RosterJob{}, fmt.Errorf("%w: %v", protocol.ErrUploadInvalid, err)
	}
	job := RosterJob{Lines: lines, Total: len(entries), Errors: []RosterLine{}}
	for _, b := range bad {
		job.Errors = append(job.Errors, rosterLine(b.Line, b.StudentNo, b.Err))
	}
	progress(job)
	err = a.Svc.ImportRoster(ctx, entries, func(i int, o wallet.ImportOutcome, err error) {
		job.Done++
		switch {
		case err != nil:
			job.Errors = append(job.Errors, rosterLine(entries[i].Line, entries[i].StudentNo, err))
		case o == wallet.ImportNew:
			job.New++
		case o == wallet.ImportUpdated:
			job.Updated++
		default:
			job.Unchanged++
		}
		progress(job)
	})
	if err != nil {
		job.Failure = protocol.AsReason(err).ZH + " / " + protocol.AsReason(err).EN
	}
	job.Finished = true
	after := map[string]int{"lines": job.Lines, "new": job.New, "updated": job.Updated, "unchanged": job.Unchanged, "errors": len(job.Errors)}
	if aerr := a.audit(ctx, actor, "roster.import", "roster:"+name, "", nil, after); aerr != nil && err == nil {
		err = aerr
	}
	progress(job)
	return job, err
}

func (c *Console) uploadRoster(r *Request) (any, error) {
	if !isUpload(r.Request) || len(r.body) == 0 {
		return nil, fmt.Errorf("%w: send the roster as text/csv", protocol.ErrUploadInvalid)
	}
	name, err := searchText(r.URL.Query().Get("name"), false)
	if err != nil {
		return nil, fmt.Errorf("%w: name", protocol.ErrBadRequest)
	}
	var raw [8]byte
	if _, err := io.ReadFull(c.opt.Rand, raw[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	id := hex.EncodeToString(raw[:])
	j := &c.roster
	j.mu.Lock()
	if j.jobs == nil {
		j.jobs = map[string]*RosterJob{}
	}
	for len(j.order) >= maxRosterJobs {
		old := j.order[0]
		if !j.jobs[old].Finished {
			j.mu.Unlock()
			return nil, protocol.ErrBusy
		}
		delete(j.jobs, old)
		j.order = j.order[1:]
	}
	j.jobs[id] = &RosterJob{ID: id, Errors: []RosterLine{}}
	j.order = append(j.order, id)
	j.mu.Unlock()
	actor, body := r.Actor(), bytes.NewReader(r.body)
	go func() {
		// Not the request's context: the import goes on after the upload's answer.
		_, err := c.act.ImportRoster(context.Background(), actor, body, name, func(s RosterJob) {
			s.ID = id
			s.Errors = append([]RosterLine(nil), s.Errors...)
			j.mu.Lock()
			j.jobs[id] = &s
			j.mu.Unlock()
		})
		if err != nil {
			c.opt.Log.Error("console: roster import", "job", id, "err", err)
		}
	}()
	return map[string]string{"id": id}, nil
}

func (c *Console) rosterProgress(r *Request) (any, error) {
	j := &c.roster
	j.mu.Lock()
	defer j.mu.Unlock()
	job := j.jobs[r.PathValue("id")]
	if job == nil {
		return nil, protocol.ErrNotFound
	}
	return job, nil
}
