package fieldcrypt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCipher(t *testing.T) {
	k, _ := NewKey()
	c, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Seal(ColUserCard, "6217000000000000014")
	b, _ := c.Seal(ColUserCard, "6217000000000000014")
	if a == b || !strings.HasPrefix(a, Prefix) {
		t.Fatalf("seal: %q %q", a, b)
	}
	if v, err := c.Open(ColUserCard, a); err != nil || v != "6217000000000000014" {
		t.Fatalf("open: %q %v", v, err)
	}
	if _, err := c.Open(ColRecordCard, a); err == nil {
		t.Fatal("a value moved to another column decrypted")
	}
	if _, err := c.Open(ColUserCard, "6217000000000000014"); err == nil {
		t.Fatal("a clear value read as if encrypted")
	}
	if v, _ := c.Seal(ColUserCard, ""); v != "" {
		t.Fatalf("empty sealed to %q", v)
	}
	if v, _ := c.SealClear(ColUserCard, a); v != a {
		t.Fatal("an encrypted value encrypted twice")
	}
	if _, err := New(k[:16]); err == nil {
		t.Fatal("short key accepted")
	}
	other, _ := NewKey()
	c2, _ := New(other)
	if c2.Check() == c.Check() {
		t.Fatal("two keys with one check value")
	}
	if _, err := c2.Open(ColUserCard, a); err == nil {
		t.Fatal("opened under another key")
	}
}

func TestKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), KeyFile)
	k, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := LoadOrCreateKey(p)
	if err != nil || string(again) != string(k) {
		t.Fatalf("reload: %v", err)
	}
}

func TestIndex(t *testing.T) {
	k, _ := NewKey()
	c, _ := New(k)
	other, _ := NewKey()
	c2, _ := New(other)
	a := c.Index(ColUserPhone, "13800000001")
	tests := []struct {
		name string
		got  string
		same bool
	}{
		{"same value, same key", c.Index(ColUserPhone, "13800000001"), true},
		{"another value", c.Index(ColUserPhone, "13800000002"), false},
		{"another column", c.Index(ColUserID, "13800000001"), false},
		{"another key", c2.Index(ColUserPhone, "13800000001"), false},
	}
	for _, tc := range tests {
		if (tc.got == a) != tc.same {
			t.Errorf("%s: %q vs %q", tc.name, tc.got, a)
		}
	}
	if len(a) != 32 || strings.Contains(a, "13800000001") {
		t.Errorf("index %q", a)
	}
	if c.Index(ColUserPhone, "") != "" {
		t.Error("empty value indexed")
	}
}
