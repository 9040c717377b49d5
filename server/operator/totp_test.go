package operator

import (
	"testing"
	"time"
)

// RFC 6238 appendix B, SHA-1 column (8 digits there; the last 6 here).
func TestTOTPVectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	tests := []struct {
		unix int64
		want string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	}
	for _, tc := range tests {
		if got := TOTPCode(secret, TOTPStepAt(time.Unix(tc.unix, 0))); got != tc.want {
			t.Errorf("T=%d: got %s, want %s", tc.unix, got, tc.want)
		}
	}
}

func TestCheckTOTP(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111109, 0)
	cur := TOTPStepAt(now)
	tests := []struct {
		name string
		code string
		last int64
		ok   bool
		step int64
	}{
		{"current", TOTPCode(secret, cur), 0, true, cur},
		{"previous step (clock drift)", TOTPCode(secret, cur-1), 0, true, cur - 1},
		{"next step", TOTPCode(secret, cur+1), 0, true, cur + 1},
		{"two steps old", TOTPCode(secret, cur-2), 0, false, 0},
		{"replayed", TOTPCode(secret, cur), cur, false, 0},
		{"wrong", "000000", 0, false, 0},
		{"short", "12345", 0, false, 0},
		{"letters", "abcdef", 0, false, 0},
	}
	for _, tc := range tests {
		step, ok := CheckTOTP(secret, tc.code, now, tc.last)
		if ok != tc.ok || step != tc.step {
			t.Errorf("%s: got (%d, %v), want (%d, %v)", tc.name, step, ok, tc.step, tc.ok)
		}
	}
}

func TestRolesAndNames(t *testing.T) {
	for _, r := range Roles() {
		got, ok := ParseRole(r.String())
		if !ok || got != r || !r.Valid() {
			t.Errorf("role %d: round trip %v %v", r, got, ok)
		}
	}
	if _, ok := ParseRole("root"); ok {
		t.Error("root parsed")
	}
	for name, want := range map[string]bool{"zhang.san": true, "a": false, "Admin": false, "li-si_2": true, "x'; drop": false, "": false} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v", name, !want)
		}
	}
}
