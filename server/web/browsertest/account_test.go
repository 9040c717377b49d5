package browsertest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet/wallettest"
)

// shotBoth saves the page drawn now in Chinese and in English (both at the
// 360 px viewport) and comes back to Chinese. check, if given, must hold
// in English (the page is drawn in the student's language).
func shotBoth(t *testing.T, b *Browser, dir, page, check string) {
	t.Helper()
	screenshot(t, b, dir, page+"-zh.png")
	flip := func(want string) {
		t.Helper()
		mustEval[bool](t, b, `(document.body.dataset.rendered = "", document.querySelector("#lang").click(), true)`)
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered !== "" && document.documentElement.lang === "`+want+`"`); err != nil {
			t.Fatal(err)
		}
	}
	flip("en")
	if check != "" && !mustEval[bool](t, b, check) {
		t.Errorf("%s in English: %s does not hold", page, check)
	}
	screenshot(t, b, dir, page+"-en.png")
	flip("zh-CN")
}

// TestAccountSecurityPages: the account and security screens of issue 15
// against the real authorizer and bank simulator, each at 360 px in
// Chinese and English, with screenshots as artifacts.
func TestAccountSecurityPages(t *testing.T) {
	b := newBrowser(t)
	r := newRig(t)
	art := artifacts(t)
	ctx := context.Background()
	s := r.e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 30_00})
	must(t, b.Open(r.srv.URL))
	must(t, b.Login(s.No, s.Password))

	t.Run("limits: the guide's labels, advice, per payment ≤ daily", func(t *testing.T) {
		must(t, b.Show("limits"))
		labels := mustEval[string](t, b, `[...document.querySelectorAll("#limits label")].map(l => l.textContent).join("|")`)
		if !strings.Contains(labels, "单笔限额") || !strings.Contains(labels, "日累计限额") || !strings.Contains(mustEval[string](t, b, `document.querySelector("#limits-advice").textContent`), "淋浴") {
			t.Fatalf("limits labels %q", labels)
		}
		shotBoth(t, b, art, "limits", `document.querySelector("#limits-advice").textContent.includes("per-payment")`)
		must(t, b.Fill("#limits", map[string]string{"per_transaction": "80", "daily": "50"}))
		must(t, b.Submit("#limits"))
		if code, _, err := b.FormError("#limits"); err != nil || code != "LIMITSORDER" {
			t.Fatalf("per payment above daily: %q %v", code, err)
		}
		if !mustEval[bool](t, b, `document.querySelector("#f-per_transaction").getAttribute("aria-invalid") === "true"`) {
			t.Error("the per-payment field is not marked")
		}
	})

	t.Run("withdraw with the payment password", func(t *testing.T) {
		must(t, b.Show("withdraw"))
		shotBoth(t, b, art, "withdraw", "")
		must(t, b.Fill("#withdraw", map[string]string{"amount": "5", "password": "000000"}))
		must(t, b.Submit("#withdraw"))
		if code, _, err := b.FormError("#withdraw"); err != nil || code != protocol.ErrPaymentPasswordWrong.Code {
			t.Fatalf("wrong payment password: %q %v", code, err)
		}
		must(t, b.Fill("#withdraw", map[string]string{"password": s.PayPW}))
		must(t, b.Submit("#withdraw"))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "home"`); err != nil {
			t.Fatal(err)
		}
		if got := r.e.Balance(s); got != 25_00 {
			t.Fatalf("balance %d after withdrawing ¥5", got)
		}
	})

	t.Run("forgotten payment password reset by the bank's SMS code", func(t *testing.T) {
		must(t, b.Show("passwords"))
		if !mustEval[bool](t, b, `!!document.querySelector('#paypwd a[href="#forgot/payment"]')`) {
			t.Fatal("no reset link on the passwords page")
		}
		must(t, b.Show("forgot/payment"))
		shotBoth(t, b, art, "forgot", "")
		must(t, b.Submit("#otpsend"))
		if _, err := WaitFor[bool](b, `!document.querySelector("#otpreset").hidden`); err != nil {
			t.Fatal(err)
		}
		if sent := mustEval[string](t, b, `document.querySelector("#otp-sent").textContent`); !strings.Contains(sent, s.Phone[:3]+"****"+s.Phone[7:]) {
			t.Fatalf("sent note %q", sent)
		}
		code, ok := r.e.Bank.LastCode(s.Phone)
		if !ok {
			t.Fatal("no SMS in the bank's outbox")
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		must(t, b.Fill("#otpreset", map[string]string{"code": wrong, "password": "864202"}))
		must(t, b.Submit("#otpreset"))
		if code, _, err := b.FormError("#otpreset"); err != nil || code != protocol.ErrOTPWrong.Code {
			t.Fatalf("wrong SMS code: %q %v", code, err)
		}
		if f := mustEval[string](t, b, `document.querySelector("#otpreset .err").dataset.field`); f != "code" {
			t.Errorf("wrong code points at %q", f)
		}
		screenshot(t, b, art, "forgot-wrong-code.png")
		must(t, b.Fill("#otpreset", map[string]string{"code": code}))
		must(t, b.Submit("#otpreset"))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "passwords"`); err != nil {
			t.Fatal(err)
		}
		if err := r.svc.ConfirmPassword(ctx, s.ID, "864202"); err != nil {
			t.Fatalf("the new payment password: %v", err)
		}
	})

	t.Run("WeChat: 校园e码通 named, linked, unlinked", func(t *testing.T) {
		must(t, b.Show("wechat"))
		if what := mustEval[string](t, b, `document.querySelector("#wechat-what").textContent`); !strings.Contains(what, "校园e码通") {
			t.Fatalf("mini-program not named: %q", what)
		}
		shotBoth(t, b, art, "wechat", `document.querySelector("#wechat-what").textContent.includes("mini-program")`)
		lc, err := r.e.WeChat.NewLoginCode(s.OpenID)
		must(t, err)
		must(t, b.Fill("#wx", map[string]string{"code": lc}))
		must(t, b.Submit("#wx"))
		if _, err := WaitFor[bool](b, `!!document.querySelector("#wxunlink")`); err != nil {
			t.Fatal(err)
		}
		shotBoth(t, b, art, "wechat-linked", "")
		must(t, b.Submit("#wxunlink")) // asks once more
		if _, err := WaitFor[bool](b, `document.querySelector("#wxunlink").dataset.confirm === "1"`); err != nil {
			t.Fatal(err)
		}
		must(t, b.Submit("#wxunlink"))
		if _, err := WaitFor[bool](b, `!!document.querySelector("#wx")`); err != nil {
			t.Fatal(err)
		}
		if v, _ := r.svc.Wallet(ctx, s.ID); v == nil || v.WeChatLinked {
			t.Fatalf("still linked: %+v", v)
		}
	})

	t.Run("card lost and 解挂, cancel preview", func(t *testing.T) {
		must(t, b.Show("cancel"))
		shotBoth(t, b, art, "cancel", `document.querySelector("#cancel-ends").textContent.includes("withdraw")`)
		must(t, b.Submit("#lost"))
		if _, err := WaitFor[bool](b, `!!document.querySelector("#lost-confirm")`); err != nil {
			t.Fatal(err)
		}
		screenshot(t, b, art, "card-lost-confirm.png")
		must(t, b.Fill("#lost", map[string]string{"confirm_password": "864202"}))
		must(t, b.Submit("#lost"))
		if _, err := WaitFor[bool](b, `!!document.querySelector("#card-lost-now")`); err != nil {
			t.Fatal(err)
		}
		shotBoth(t, b, art, "card-lost", "")
	})

	t.Run("devices, login password, log out everywhere", func(t *testing.T) {
		_, err := b.Code("pay") // registers this browser's device key
		must(t, err)
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		lost, err := r.svc.RegisterDevice(ctx, s.ID, pub) // the lost phone
		must(t, err)
		must(t, b.Show("security"))
		// The test back end's own, this browser's and the lost phone.
		if n := mustEval[int](t, b, `document.querySelectorAll("#devices li[data-id]").length`); n != 3 {
			t.Fatalf("%d devices listed", n)
		}
		if !mustEval[bool](t, b, `!!document.querySelector("#devices .this-phone")`) {
			t.Error("this phone not marked")
		}
		shotBoth(t, b, art, "security", `document.querySelector("#logoutall").textContent.includes("Log out everywhere")`)
		mustEval[bool](t, b, `(document.querySelector('[data-revoke="`+itoa(lost.DeviceID)+`"]').click(), true)`)
		if _, err := WaitFor[bool](b, `document.querySelector('#devices li[data-id="`+itoa(lost.DeviceID)+`"]')?.dataset.revoked === "true"`); err != nil {
			t.Fatal(err)
		}
		must(t, b.Fill("#loginpwd", map[string]string{"old_password": s.Password, "password": "short"}))
		must(t, b.Submit("#loginpwd"))
		if code, _, err := b.FormError("#loginpwd"); err != nil || code != protocol.ErrLoginPasswordWeak.Code {
			t.Fatalf("weak login password: %q %v", code, err)
		}
		must(t, b.Fill("#loginpwd", map[string]string{"old_password": "not-it-1", "password": "newpass2026"}))
		must(t, b.Submit("#loginpwd"))
		if code, _, err := b.FormError("#loginpwd"); err != nil || code != protocol.ErrLoginPasswordWrong.Code {
			t.Fatalf("wrong old login password: %q %v", code, err)
		}
		must(t, b.Fill("#loginpwd", map[string]string{"old_password": s.Password, "password": "newpass2026"}))
		must(t, b.Submit("#loginpwd"))
		if _, err := WaitFor[bool](b, `document.querySelector("#toast").textContent.startsWith("已修改") && !!document.querySelector("#logoutall")`); err != nil {
			t.Fatal(err)
		}
		must(t, b.Submit("#logoutall"))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "login" && !localStorage.getItem("token")`); err != nil {
			t.Fatal(err)
		}
		// The login page is already drawn: log in on it with the new password.
		must(t, b.Fill("#login", map[string]string{"student_no": s.No, "password": "newpass2026"}))
		must(t, b.Submit("#login"))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered !== "login" && !!localStorage.getItem("token")`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no codes for an inactive wallet", func(t *testing.T) {
		in := r.e.AddStudent(wallettest.Options{Inactive: true})
		mustEval[bool](t, b, `(localStorage.removeItem("token"), sessionStorage.clear(), history.replaceState(null, "", "/"), true)`)
		must(t, b.Open(r.srv.URL))
		must(t, b.Login(in.No, in.Password))
		if !mustEval[bool](t, b, `document.querySelector('[data-go="paycode"]').disabled && document.querySelector('[data-go="idcode"]').disabled`) {
			t.Error("code buttons offered for an inactive wallet")
		}
		must(t, b.Show("paycode"))
		if st := mustEval[string](t, b, `(document.querySelector("#codes-inactive") || {dataset: {}}).dataset.state || ""`); st != "inactive" {
			t.Fatalf("code page for an inactive wallet: %q", st)
		}
		if mustEval[bool](t, b, `!!document.querySelector("#qr")`) {
			t.Error("a code was drawn")
		}
		shotBoth(t, b, art, "codes-inactive", "")
	})
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
