package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHandlerServesShell(t *testing.T) {
	gen := t.TempDir()
	if err := os.WriteFile(filepath.Join(gen, "wallet.wasm"), []byte("\x00asm-test"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := New(Config{GenDir: gen})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		path, ctype, contains string
		code                  int
	}{
		{"/", "text/html; charset=utf-8", "校园电子钱包", 200},
		{"/app.js", "text/javascript; charset=utf-8", "campuspay.codeBody", 200},
		{"/app.css", "text/css; charset=utf-8", "--g", 200},
		{"/gen/wallet.wasm", "application/wasm", "", 200},
		{"/../../etc/passwd", "", "", 404},
		{"/nope.js", "", "", 404},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d", tc.path, resp.StatusCode)
			continue
		}
		if tc.code != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != tc.ctype {
			t.Errorf("%s: content type %q", tc.path, ct)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: body lacks %q", tc.path, tc.contains)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: CSP %q", tc.path, csp)
		}
	}
	// No external resources in the shell: every src/href is relative.
	for _, name := range []string{"index.html", "app.js", "app.css", "sw.js"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"http://", "https://", "//cdn"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s references an external resource (%s)", name, bad)
			}
		}
	}
}

func TestHandlerGzip(t *testing.T) {
	h := New(Config{})
	req := httptest.NewRequest("GET", "/app.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatal("not gzipped")
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if !strings.Contains(string(b), "onCampuspayReady") {
		t.Fatal("gzipped body differs")
	}
	post := httptest.NewRecorder()
	h.ServeHTTP(post, httptest.NewRequest("POST", "/", nil))
	if post.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", post.Code)
	}
}

func TestWithAPI(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api "+r.URL.Path) })
	h := New(Config{}).WithAPI(api)
	for path, want := range map[string]string{"/api/v1/wallet": "api /api/v1/wallet", "/": "校园电子钱包"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %q lacks %q", path, rec.Body.String(), want)
		}
	}
}
