package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"campuspay/terminal/device"
)

const merchantQR = "CPM1:M0042:T0007:SIG.3F9A0C77B2E14D5A"

// stream is one SSE client.
type stream struct {
	events chan view
	cancel context.CancelFunc
	done   chan struct{}
}

func connect(t *testing.T, url string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	s := &stream{events: make(chan view, 64), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var v view
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Error(err)
				return
			}
			s.events <- v
		}
	}()
	t.Cleanup(func() { cancel(); <-s.done })
	return s
}

// next waits for the next screen, or fails after a deadline.
func (s *stream) next(t *testing.T) view {
	t.Helper()
	select {
	case v := <-s.events:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return view{}
	}
}

// until waits for a screen with seq ≥ want (intermediate screens may be skipped).
func (s *stream) until(t *testing.T, seq int64) view {
	t.Helper()
	for {
		if v := s.next(t); v.Seq >= seq {
			return v
		}
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestNewClientGetsCurrentScreen(t *testing.T) {
	d := New(Options{})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	if err := d.Show(device.Screen{Kind: device.ScreenAwait, Title: "请出示付款码", TitleEN: "Show your code", Amount: 1250, Online: true}); err != nil {
		t.Fatal(err)
	}
	v := connect(t, srv.URL).next(t)
	if v.Seq != 1 || v.Kind != device.ScreenAwait || v.Amount != "¥12.50" || v.Title != "请出示付款码" || !v.Online || v.QR != "" {
		t.Fatalf("first event %+v", v)
	}
}

func TestViews(t *testing.T) {
	d := New(Options{})
	cases := []struct {
		s    device.Screen
		want func(view) bool
	}{
		{device.Screen{Kind: device.ScreenAmount}, func(v view) bool { return v.Amount == "¥0.00" }},
		{device.Screen{Kind: device.ScreenIdle}, func(v view) bool { return v.Amount == "" && v.Result == "" }},
		{device.Screen{Kind: device.ScreenResult, OK: true}, func(v view) bool { return v.Result == "ok" }},
		{device.Screen{Kind: device.ScreenResult}, func(v view) bool { return v.Result == "fail" }},
		{device.Screen{Kind: device.ScreenShower, Litres: 12.34, Amount: 320, Hold: 1500},
			func(v view) bool { return v.Litres == "12.3" && v.Amount == "¥3.20" && v.Hold == "¥15.00" }},
		{device.Screen{Kind: device.ScreenNotices, Lines: []string{"a", "b"}}, func(v view) bool { return len(v.Lines) == 2 }},
		{device.Screen{Kind: device.ScreenIdle}, func(v view) bool { return v.Lines != nil }}, // [] not null for the page
	}
	for _, c := range cases {
		if v := d.view(c.s, 0); !c.want(v) {
			t.Errorf("view(%+v) = %+v", c.s, v)
		}
	}
}

func decodePNG(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	img, err := png.Decode(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	bmp, _ := gozxing.NewBinaryBitmapFromImage(img)
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.GetText()
}

func TestQRImageVersioned(t *testing.T) {
	d := New(Options{})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	if resp, err := http.Get(srv.URL + "/qr.png"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("qr before any QR: %v %v", resp.Status, err)
	}
	s := connect(t, srv.URL)
	s.next(t) // blank
	d.Show(device.Screen{Kind: device.ScreenOffline, QR: merchantQR})
	v1 := s.until(t, 1)
	if got := decodePNG(t, srv.URL+v1.QR); got != merchantQR {
		t.Fatalf("decoded %q", got)
	}
	d.Show(device.Screen{Kind: device.ScreenOffline, QR: merchantQR, Online: false, Message: "x"})
	if v := s.until(t, 2); v.QR != v1.QR {
		t.Fatalf("same payload, new URL %q vs %q", v.QR, v1.QR)
	}
	d.Show(device.Screen{Kind: device.ScreenOffline, QR: merchantQR + "-2"})
	v3 := s.until(t, 3)
	if v3.QR == v1.QR || decodePNG(t, srv.URL+v3.QR) != merchantQR+"-2" {
		t.Fatalf("new payload kept URL %q", v3.QR)
	}
	d.Show(device.Screen{Kind: device.ScreenIdle})
	if v := s.until(t, 4); v.QR != "" {
		t.Fatalf("idle has QR %q", v.QR)
	}
	// An unencodable QR is an error, and the screen still shows, without it.
	if err := d.Show(device.Screen{Kind: device.ScreenOffline, Title: "离线", QR: strings.Repeat("x", 4000)}); err == nil {
		t.Fatal("4000-byte QR encoded")
	}
	if v := s.until(t, 5); v.Title != "离线" || v.QR != "" {
		t.Fatalf("screen after bad QR %+v", v)
	}
}

func TestManyClientsAndDisconnects(t *testing.T) {
	d := New(Options{})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	base := runtime.NumGoroutine()

	const n = 50
	var streams []*stream
	for range n {
		streams = append(streams, connect(t, srv.URL))
	}
	eventually(t, "all clients connected", func() bool { return d.Clients() == n })
	for i := range 20 {
		d.Show(device.Screen{Kind: device.ScreenAmount, Amount: int64(i)})
	}
	for _, s := range streams {
		if v := s.until(t, 20); v.Amount != "¥0.19" {
			t.Fatalf("last screen %+v", v)
		}
	}
	// Half the clients go away; the rest keep getting screens.
	for _, s := range streams[:n/2] {
		s.cancel()
		<-s.done
	}
	eventually(t, "streams of gone clients to end", func() bool { return d.Clients() == n-n/2 })
	d.Show(device.Screen{Kind: device.ScreenIdle, Title: "欢迎"})
	for _, s := range streams[n/2:] {
		if v := s.until(t, 21); v.Title != "欢迎" {
			t.Fatalf("%+v", v)
		}
	}
	// Close ends the rest from the server side.
	d.Close()
	for _, s := range streams[n/2:] {
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Fatal("stream not ended by Close")
		}
	}
	eventually(t, "no streams", func() bool { return d.Clients() == 0 })
	srv.CloseClientConnections()
	http.DefaultClient.CloseIdleConnections()
	eventually(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base+2 })
	if resp, err := http.Get(srv.URL + "/events"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream after Close: %v %v", resp, err)
	}
}

func TestHaltBlanks(t *testing.T) {
	d := New(Options{})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	s := connect(t, srv.URL)
	d.Show(device.Screen{Kind: device.ScreenIdle, Title: "欢迎"})
	s.until(t, 1)
	for range 2 {
		if err := d.Halt(); err != nil {
			t.Fatal(err)
		}
	}
	if v := s.until(t, 2); v.Kind != device.ScreenBlank || v.Title != "" {
		t.Fatalf("after Halt %+v", v)
	}
	if err := d.Show(device.Screen{Kind: device.ScreenIdle}); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Show after Halt = %v", err)
	}
}

func TestPageIsSelfContained(t *testing.T) {
	d := New(Options{})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]`).Find(page); m != nil {
		t.Fatalf("page refers outside: %q", m)
	}
	if resp, _ := http.Get(srv.URL + "/nope"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %s", resp.Status)
	}
}
