package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"campuspay/server/console"
	"campuspay/server/operator"
	"campuspay/server/wallet/wallettest"
	"campuspay/server/web/browsertest"
)

// browserOf starts one headless Chromium on a 360-px phone screen for the
// whole test.
func browserOf(t *testing.T) *browsertest.Browser {
	t.Helper()
	if _, err := browsertest.Chromium(); err != nil {
		t.Skip("chromium not installed (make deps installs it)")
	}
	b, err := browsertest.New(context.Background(), browsertest.Options{Logf: func(f string, a ...any) { t.Logf(f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

type page struct {
	t *testing.T
	b *browsertest.Browser
}

func (p page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := p.b.Do(actions...); err != nil {
		p.t.Fatal(err)
	}
}

func (p page) eval(expr string) string {
	p.t.Helper()
	v, err := browsertest.Eval[string](p.b, expr)
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func (p page) wait(expr string) {
	p.t.Helper()
	if _, err := browsertest.WaitFor[bool](p.b, expr); err != nil {
		text, _ := browsertest.Eval[string](p.b, `location.hash + " | " + document.body.innerText`)
		p.t.Fatalf("%v\npage: %s", err, text)
	}
}

// show navigates to a console page and waits until it is drawn.
func (p page) show(hash, id string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(delete document.getElementById('page').dataset.ready, location.hash = %q, "")`, hash))
	p.wait(fmt.Sprintf(`document.getElementById('page').dataset.ready === %q`, id))
}

func (p page) fill(sel, v string) {
	p.t.Helper()
	p.do(chromedp.SetValue(chromedp.CSS(sel), v))
}

func (p page) click(sel string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(sel)))
}

// shot saves a screenshot as an artifact after checking that the page fits
// the 360-px screen without sideways scrolling.
func (p page) shot(name string) {
	p.t.Helper()
	if w := p.eval(`String(document.documentElement.scrollWidth)`); w > "360" && len(w) >= 3 {
		p.t.Errorf("%s: the page is %s px wide on a 360-px screen", name, w)
	}
	b, err := p.b.Screenshot()
	if err != nil {
		p.t.Fatal(err)
	}
	saveArtifact(p.t, name+".png", b)
}

// act clicks an action button, gives the reason in the dialog and waits
// for the answer.
func (p page) act(button, reason string) {
	p.t.Helper()
	p.eval(`(document.getElementById('action-result').textContent = "", "")`)
	p.click(button)
	p.wait(`!!document.querySelector('#reason-dialog[open] textarea')`)
	p.fill(`#reason-dialog textarea`, reason)
	p.click(`#reason-ok`)
	p.wait(`document.getElementById('action-result').textContent !== "" || document.getElementById('action-error').textContent !== ""`)
	if e := p.eval(`document.getElementById('action-error').textContent`); e != "" {
		p.t.Fatalf("%s: %s", button, e)
	}
}

func (p page) login(name string) {
	p.t.Helper()
	p.wait(`!document.getElementById('login').hidden`)
	p.fill(`#login input[name=name]`, name)
	p.fill(`#login input[name=password]`, password)
	p.click(`#login button[type=submit]`)
	p.wait(`!!document.getElementById('page').dataset.ready`)
}

// TestConsoleInBrowser walks the main pages in headless Chromium at
// 360 px, in Chinese and then English, as the help desk (search, the
// student page, freeze and unfreeze, 挂失 and 解挂, a student's offline
// debt and flagged offline payments, roster upload, the audit log) and as
// a merchant manager (their fleet only), with screenshots as artifacts.
func TestConsoleInBrowser(t *testing.T) {
	r := newRig(t, console.Options{})
	b := browserOf(t)
	p := page{t, b}
	s := r.env.AddStudent(wallettest.Options{BankBalance: 500_00, TopUp: 88_00})
	o := r.env.AddStudent(wallettest.Options{BankBalance: 500_00, TopUp: 10_00})
	offlineHistory(t, r.env, o)
	r.addOperator("zhang.desk", operator.RoleHelpdesk, "", false)
	r.addOperator("canteen", operator.RoleMerchant, wallettest.Merchant, false)
	p.do(chromedp.Navigate(r.srv.URL + "/console/"))
	p.shot("login-zh")
	// A wrong password: the error in Chinese.
	p.fill(`#login input[name=name]`, "zhang.desk")
	p.fill(`#login input[name=password]`, "wrong password")
	p.click(`#login button[type=submit]`)
	p.wait(`document.querySelector('#login .error').textContent.includes('密码')`)
	p.login("zhang.desk")

	for _, lang := range []string{"zh", "en"} {
		if lang == "en" {
			p.click(`#lang`)
			p.wait(`document.documentElement.lang === 'en'`)
		}
		p.show("#/students?q="+s.No, "students")
		p.wait(fmt.Sprintf(`!!document.querySelector('a[data-no=%q]')`, s.No))
		p.shot("students-" + lang)
		p.show("#/student?no="+s.No, "student")
		if got := p.eval(`(document.getElementById('balance') || {}).textContent || document.getElementById('page').textContent`); got != "¥88.00" {
			t.Fatalf("student page: %s", got)
		}
		p.shot("student-" + lang)

		p.act(`#freeze`, "学生本人申请冻结 "+lang)
		p.wait(`!!document.getElementById('frozen-badge')`)
		p.shot("student-frozen-" + lang)
		if u, _ := r.env.Store.User(ctx, s.ID); !u.Frozen {
			t.Fatal("the console's freeze did not freeze")
		}
		p.act(`#unfreeze`, "核实后解冻 "+lang)
		p.wait(`!document.getElementById('frozen-badge')`)
		p.act(`#card-lost`, "卡丢失 "+lang)
		p.wait(`!!document.getElementById('card-found')`)
		if lost, _ := r.env.Store.CardLost(ctx, s.CardUID); !lost {
			t.Fatal("the console's 挂失 did not report the card")
		}
		p.act(`#card-found`, "找回卡 "+lang)
		p.wait(`!!document.getElementById('card-lost')`)

		p.show("#/student?no="+o.No, "student")
		p.wait(`document.getElementById('debt')?.dataset.cents === '400'`)
		flag := map[string]string{"zh": "设备吊销后使用", "en": "Used after the phone was revoked"}[lang]
		if got, want := p.eval(`[...document.querySelectorAll('#transactions .flag')].map((f) => f.dataset.flag + ':' + f.textContent).join()`),
			"after_revoke:"+flag+",after_revoke:"+flag; got != want {
			t.Fatalf("flags shown %q, want %q", got, want)
		}
		p.eval(`(document.getElementById('transactions').scrollIntoView(), '')`)
		p.shot("student-offline-" + lang)
	}
	if es := r.audit(operator.AuditQuery{Target: "user:" + s.No}); len(es) != 8 {
		t.Fatalf("%d audit entries for the student, want 8", len(es))
	}

	// Roster upload: progress, then the refused lines.
	dir := t.TempDir()
	csv := "学号,姓名,身份证号,手机号,类别,校区,卡号,初始密码\n" +
		"20270001,张三," + wallettest.IDNumber("11010520000101001") + ",13800000001,本科生,yungu,CB0001,pw1\n" +
		"20270002,李四,110105200001010020,13800000002,本科生,yungu,CB0002,pw2\n" +
		"20270003,王五\n"
	f := filepath.Join(dir, "roster.csv")
	if err := os.WriteFile(f, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "zh"} {
		if lang == "zh" {
			p.click(`#lang`)
			p.wait(`document.documentElement.lang === 'zh-CN'`)
		}
		p.show("#/roster", "roster")
		p.do(chromedp.SetUploadFiles(chromedp.CSS(`#roster-upload input[type=file]`), []string{f}))
		p.click(`#roster-upload button[type=submit]`)
		p.wait(`document.getElementById('roster-status').dataset.finished === '1'`)
		if got := p.eval(`document.getElementById('roster-error-lines').textContent`); !strings.Contains(got, "身份证号") || !strings.Contains(got, "列数") {
			t.Fatalf("roster errors: %s", got)
		}
		p.shot("roster-" + lang)
		p.show("#/fleet", "fleet")
		p.shot("fleet-" + lang)
		p.show("#/audit?q="+s.No, "audit")
		p.wait(`!!document.querySelector('tr[data-action="wallet.freeze"]')`)
		p.shot("audit-" + lang)
	}

	// The merchant manager: their own terminals, no students.
	p.click(`#logout`)
	p.login("canteen")
	p.show("#/fleet", "fleet")
	if n := p.eval(`String(document.querySelectorAll('#fleet tbody tr').length)`); n != "3" {
		t.Fatalf("merchant sees %s terminals", n)
	}
	if p.eval(`String(!!document.querySelector('#nav a[data-page=students]'))`) != "false" {
		t.Fatal("the merchant's menu offers students")
	}
	p.shot("fleet-merchant-zh")
}
