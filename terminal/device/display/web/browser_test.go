package web

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"campuspay/terminal/device"
)

// browser starts Debian's headless Chromium with the flags that keep it
// off the network (FACTS.md, "Browser") and a fresh profile.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	profile := t.TempDir()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(profile),
		chromedp.Env("TMPDIR="+profile), // Chromium's temporary files go with the profile
		chromedp.WindowSize(800, 480),
	)
	bctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return bctx
}

// artifacts is where screenshots go: $ARTIFACTS_DIR, else a temp dir.
func artifacts(t *testing.T) string {
	if dir := os.Getenv("ARTIFACTS_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

func TestBrowserRendersScreens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bctx := browser(t, ctx)

	d := New(Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: d}
	go hs.Serve(ln)
	t.Cleanup(func() {
		d.Close() // end the page's stream so Shutdown need not wait for it
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		if err := hs.Shutdown(sctx); err != nil {
			t.Error(err)
		}
	})
	url := "http://" + ln.Addr().String() + "/"

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	js := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	// shown waits until the page has rendered screen seq.
	shown := func(seq int64) {
		t.Helper()
		expr := fmt.Sprintf("Number(document.body.dataset.seq) >= %d", seq)
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			t.Fatalf("screen %d not shown: %v", seq, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text %s: %v", sel, err)
		}
		return v
	}
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}

	do("viewport", chromedp.EmulateViewport(800, 480))
	do("navigate", chromedp.Navigate(url))
	shown(0)

	d.Show(device.Screen{Kind: device.ScreenAwait, Title: "请出示付款码", TitleEN: "Please show your payment code", Amount: 1250, Online: true})
	shown(1)
	do("amount visible", chromedp.WaitVisible(chromedp.ID("amount")))
	check("amount", text("#amount"), "¥12.50")
	check("title", text("#title"), "请出示付款码")
	check("titleEN", text("#titleEN"), "Please show your payment code")
	check("link", text("#link"), "● 在线 Online")
	check("result hidden", js(`String(getComputedStyle(document.getElementById("result")).display)`), "none")

	d.Show(device.Screen{Kind: device.ScreenResult, OK: true, Amount: 1250, Message: "支付成功", MessageEN: "Payment successful", Online: true})
	shown(2)
	do("result visible", chromedp.WaitVisible(chromedp.ID("result")))
	check("ok colour", js(`getComputedStyle(document.getElementById("result")).color`), "rgb(26, 127, 55)")
	check("ok text", text("#resultZh"), "✔ 成功")
	check("message", text("#message"), "支付成功")

	d.Show(device.Screen{Kind: device.ScreenResult, Message: "余额不足", MessageEN: "Insufficient balance", Online: true})
	shown(3)
	check("fail colour", js(`getComputedStyle(document.getElementById("result")).color`), "rgb(198, 40, 40)")
	check("fail text", text("#resultEN"), "Failed")
	check("no amount", js(`String(document.getElementById("amountRow").classList.contains("hidden"))`), "true")

	d.Show(device.Screen{Kind: device.ScreenShower, Title: "正在用水", TitleEN: "Shower running", Litres: 12.34, Amount: 320, Hold: 1500, Online: true})
	shown(4)
	do("shower visible", chromedp.WaitVisible(chromedp.ID("shower")))
	check("litres", text("#litres"), "12.3 L")
	check("cost", text("#amount"), "¥3.20")
	check("cost label", text("#amountLabel"), "费用 Cost")
	check("hold", text("#hold"), "¥15.00")

	d.Show(device.Screen{Kind: device.ScreenNotices, Title: "离线收款", TitleEN: "Paid while offline", Lines: []string{"12:01 ¥8.00 张*", "12:05 ¥3.50 李*"}, Online: true})
	shown(5)
	check("notices", js(`Array.from(document.querySelectorAll("#notices li")).map(li => li.textContent).join("|")`), "12:01 ¥8.00 张*|12:05 ¥3.50 李*")

	d.Show(device.Screen{Kind: device.ScreenOffline, Title: "网络中断 请扫码付款", TitleEN: "Offline: scan to pay", QR: merchantQR})
	shown(6)
	check("link offline", text("#link"), "○ 离线 Offline")
	// A new page (a kiosk reload) gets the current screen at once.
	do("reload", chromedp.Navigate(url))
	shown(6)
	qrLoaded := `(() => { const i = document.getElementById("qr"); return i.complete && i.naturalWidth > 0 && getComputedStyle(i).display !== "none"; })()`
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](qrLoaded, chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("QR image not loaded: %v", err)
	}
	dir := artifacts(t)
	for _, vp := range []struct{ w, h int64 }{{800, 480}, {360, 740}} {
		do("viewport", chromedp.EmulateViewport(vp.w, vp.h))
		check(fmt.Sprintf("no horizontal scroll at %d px", vp.w), js(`String(document.documentElement.scrollWidth <= window.innerWidth)`), "true")
		check(fmt.Sprintf("QR inside the viewport at %dx%d", vp.w, vp.h),
			js(`(() => { const r = document.getElementById("qr").getBoundingClientRect(); return String(r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight); })()`), "true")
		shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("display-offline-qr-%dx%d.png", vp.w, vp.h))
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatal(err)
		}
		bmp, _ := gozxing.NewBinaryBitmapFromImage(img)
		res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
		if err != nil {
			t.Fatalf("QR in the %dx%d screenshot does not decode: %v", vp.w, vp.h, err)
		}
		check("scanned QR", res.GetText(), merchantQR)
	}

	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	shown(7)
	check("blank", js(`String(document.body.classList.contains("blank"))`), "true")
}
