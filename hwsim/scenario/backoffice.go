package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"campuspay/protocol"
)

// The back office's act of the day: the card centre's help desk, in the
// console the authorizer serves on /console/, finds a student by phone,
// freezes the wallet (the canteen till refuses the student's code with
// WALLET_FROZEN; a double click changes nothing) and unfreezes it (the
// code pays), then reports a card lost (the card box refuses it) and
// undoes it (the tap pays again), and finds all four in the audit log.

// ConsoleClient is an operator's browser session on the console's API.
type ConsoleClient struct {
	base string
	http *http.Client
	csrf string
}

// do sends a console API request (path under /console/api/v1) and decodes
// the answer into out; a refusal is returned as its *protocol.Reason.
func (cc *ConsoleClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cc.base+"/console/api/v1"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", cc.csrf)
	}
	res, err := cc.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		var r protocol.Reason
		if json.Unmarshal(raw, &r) == nil && protocol.ReasonByCode(r.Code) != nil {
			return protocol.ReasonByCode(r.Code)
		}
		return fmt.Errorf("%s %s: %s %s", method, path, res.Status, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// AddOperator creates a console operator with the admin CLI (the password
// on standard input, as an administrator would type it).
func (c *Campus) AddOperator(name, role, password string) error {
	cmd := exec.CommandContext(c.ctx, filepath.Join(c.opt.Bin, "authorizer"), "operator", "add",
		"--data", filepath.Join(c.opt.Dir, "authorizer-data"), "--config", c.authzCfg, "--name", name, "--role", role)
	cmd.Env = os.Environ()
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("operator add %s: %v: %s", name, err, out)
	}
	return nil
}

// ConsoleLogin logs an operator in to the console.
func (c *Campus) ConsoleLogin(ctx context.Context, name, password string) (*ConsoleClient, error) {
	jar, _ := cookiejar.New(nil)
	cc := &ConsoleClient{base: c.API, http: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
	var s struct{ CSRF string }
	cc.csrf = "-" // login needs none; the header is sent with every JSON body
	if err := cc.do(ctx, "POST", "/login", map[string]string{"name": name, "password": password}, &s); err != nil {
		return nil, err
	}
	cc.csrf = s.CSRF
	return cc, nil
}

type consoleOutcome struct {
	Outcome struct{ Changed bool }
}

func (d *day) backOffice() error {
	ctx, cancel := d.wait(90 * time.Second)
	defer cancel()
	const pw = "desk password 2024"
	if err := d.c.AddOperator("zhang.desk", "helpdesk", pw); err != nil {
		return err
	}
	desk, err := d.c.ConsoleLogin(ctx, "zhang.desk", pw)
	d.check("help desk", "console", "operator zhang.desk logs in", 0, "", outcome(err), "ok")
	if err != nil {
		return err
	}
	zl := d.s("2024006")
	var found struct {
		Students []struct {
			StudentNo string `json:"student_no"`
		}
	}
	err = desk.do(ctx, "GET", "/students?q="+url.QueryEscape(zl.Phone), nil, &found)
	got := outcome(err)
	if err == nil {
		got = fmt.Sprint(len(found.Students), " found")
		if len(found.Students) == 1 {
			got = found.Students[0].StudentNo
		}
	}
	d.check("help desk", "console", "find "+zl.Name+" by phone", 0, "", got, zl.No)

	act := func(what, path, reason string, wantChanged bool) error {
		var o consoleOutcome
		err := desk.do(ctx, "POST", "/students/"+zl.No+path, map[string]string{"reason": reason}, &o)
		got := outcome(err)
		if err == nil {
			got = fmt.Sprintf("changed=%v", o.Outcome.Changed)
		}
		d.check("help desk", "console", what, 0, "", got, fmt.Sprintf("changed=%v", wantChanged))
		return err
	}
	pay := func(s *Student, want string) error {
		code, err := s.App.Code()
		if err != nil {
			return err
		}
		res, err := d.posPay(1_00, code)
		if err != nil {
			return err
		}
		d.check(s.Name, posID, "pay by code", 1_00, "", result(res), want)
		return nil
	}
	if err := act("freeze "+zl.Name+"'s wallet (student's request)", "/freeze", "学生本人来电：手机丢失，申请冻结", true); err != nil {
		return err
	}
	if err := act("freeze again (double click)", "/freeze", "学生本人来电：手机丢失，申请冻结", false); err != nil {
		return err
	}
	if err := pay(zl, protocol.ErrWalletFrozen.Code); err != nil {
		return err
	}
	if err := act("unfreeze (identity checked at the desk)", "/unfreeze", "本人持学生证到服务台，核验后解冻", true); err != nil {
		return err
	}
	if err := pay(zl, "approved"); err != nil {
		return err
	}

	// 挂失 and 解挂 of 李娜's card, tapped at the card box.
	ln := d.s("2024002")
	cardAct := func(what, path, reason string) error {
		var o consoleOutcome
		err := desk.do(ctx, "POST", "/students/"+ln.No+path, map[string]string{"reason": reason}, &o)
		d.check("help desk", "console", what, 0, "", outcome(err), "ok")
		if err != nil {
			return err
		}
		return d.cardBoxConfigured(ctx, desk)
	}
	if err := cardAct("report "+ln.Name+"'s card lost (挂失)", "/card/lost", "学生来电：校园卡丢失"); err != nil {
		return err
	}
	res, err := d.tapCard(ln)
	if err != nil {
		return err
	}
	d.check(ln.Name, cardID, "tap the card reported lost", 3_00, "", result(res), protocol.ErrCardLost.Code)
	if err := cardAct("undo the report (解挂): card found", "/card/found", "学生找回校园卡，本人到服务台解挂"); err != nil {
		return err
	}
	res, err = d.tapCard(ln)
	if err != nil {
		return err
	}
	d.check(ln.Name, cardID, "tap the card again", 3_00, d.lastChannel(ln), result(res), "approved")

	var audit struct{ Entries []struct{ Action string } }
	err = desk.do(ctx, "GET", "/audit?operator=zhang.desk&limit=20", nil, &audit)
	var actions []string
	for _, e := range audit.Entries {
		if !strings.HasPrefix(e.Action, "login") {
			actions = append(actions, e.Action)
		}
	}
	got = outcome(err)
	if err == nil {
		got = strings.Join(actions, ",")
	}
	d.check("help desk", "console", "the audit log, newest first", 0, "", got, "card.found,card.lost,wallet.unfreeze,wallet.freeze")
	return nil
}

// cardBoxConfigured waits until the card box runs the config revision the
// authorizer published last (its lost-card list is current).
func (d *day) cardBoxConfigured(ctx context.Context, desk *ConsoleClient) error {
	var fleet struct {
		Terminals []struct {
			ID        string `json:"id"`
			Published uint64 `json:"published_revision"`
		}
	}
	if err := desk.do(ctx, "GET", "/terminals", nil, &fleet); err != nil {
		return err
	}
	var want uint64
	for _, t := range fleet.Terminals {
		if t.ID == cardID {
			want = t.Published
		}
	}
	for {
		var st struct {
			Config uint64 `json:"config_revision"`
		}
		if err := getJSON(ctx, d.c.Boxes[cardID].StatusURL+"/status.json", &st); err == nil && st.Config >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("card box did not get config revision %d: %w", want, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
