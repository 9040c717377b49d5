package web

import (
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestManifest: the manifest's icons are served as PNGs of the sizes it
// declares, each shortcut opens a page the wallet has, and the service
// worker keeps them (and every script of the page) for offline starts.
func TestManifest(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return resp, b
	}
	type icon struct{ Src, Sizes, Type, Purpose string }
	var m struct {
		StartURL  string `json:"start_url"`
		Display   string
		Icons     []icon
		Shortcuts []struct {
			Name, URL string
			Icons     []icon
		}
	}
	_, raw := get("/manifest.json")
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	icons := m.Icons
	for _, s := range m.Shortcuts {
		icons = append(icons, s.Icons...)
	}
	sizes := map[string]bool{}
	for _, ic := range icons {
		resp, b := get(ic.Src)
		img, err := png.Decode(strings.NewReader(string(b)))
		if err != nil || resp.Header.Get("Content-Type") != "image/png" || ic.Type != "image/png" {
			t.Fatalf("%s: %v, content type %q", ic.Src, err, resp.Header.Get("Content-Type"))
		}
		if got := fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy()); got != ic.Sizes {
			t.Errorf("%s is %s, the manifest says %s", ic.Src, got, ic.Sizes)
		}
		sizes[ic.Sizes] = true
	}
	// Installable: 192 and 512 px icons.
	if !sizes["192x192"] || !sizes["512x512"] || m.Display != "standalone" {
		t.Fatalf("manifest %+v", m)
	}
	pages := map[string]bool{}
	for _, name := range []string{"app.js", "pwa.js"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range regexp.MustCompile(`(?m)^\s*(\w+): \{ title:`).FindAllStringSubmatch(string(b), -1) {
			pages[g[1]] = true
		}
	}
	want := map[string]bool{"/#paycode": false, "/#idcode": false, "/#scan": false}
	for _, s := range m.Shortcuts {
		if !pages[strings.TrimPrefix(s.URL, "/#")] {
			t.Errorf("shortcut %q opens no page (pages %v)", s.URL, pages)
		}
		want[s.URL] = true
	}
	for u, ok := range want {
		if !ok {
			t.Errorf("no shortcut to %s", u)
		}
	}

	// The service worker keeps every script the page loads and the icons.
	_, swb := get("/sw.js")
	_, index := get("/")
	for _, g := range regexp.MustCompile(`<script src="([^"]+)"`).FindAllStringSubmatch(string(index), -1) {
		if !strings.Contains(string(swb), `"/`+g[1]+`"`) {
			t.Errorf("sw.js does not keep %s", g[1])
		}
		if !strings.HasPrefix(g[1], "gen/") { // built by make build, not here
			get("/" + g[1])
		}
	}
	for _, ic := range m.Icons {
		if !strings.Contains(string(swb), `"`+ic.Src+`"`) {
			t.Errorf("sw.js does not keep %s", ic.Src)
		}
	}
}

// TestNoExternalResources: no asset references another origin.
func TestNoExternalResources(t *testing.T) {
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "assets/gen/") {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		for _, bad := range []string{"http://", "https://", "//cdn"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s references an external resource (%s)", p, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
