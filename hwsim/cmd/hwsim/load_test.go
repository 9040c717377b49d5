package main

import (
	"strings"
	"testing"
)

func TestLoadCommand(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"load", "--help"}, 0, "late charges"},
		{[]string{"load", "--frobnicate"}, 2, "flag provided but not defined"},
		{[]string{"load", "echo", "--help"}, 0, "baseline"},
		{[]string{"load", "echo"}, 2, "usage: hwsim load echo"},
		{[]string{"load", "--bin", "/nonexistent", "--dir", dir, "--payments", "1"}, 1, "authorizer not built"},
		{[]string{"load", "--bin", "/nonexistent", "--dir", dir, "--broker", "nats"}, 1, "want embedded or mosquitto"},
		{[]string{"load", "--help"}, 0, "--scale"},
		{[]string{"load", "--scale", "1,x"}, 2, "want numbers of authorizers"},
		{[]string{"load", "--scale", "0"}, 2, "want numbers of authorizers"},
		{[]string{"load", "--bin", "/nonexistent", "--dir", dir, "--scale", "1,2"}, 1, "authorizer not built"},
	} {
		code, out, errs := runOut(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.out) {
			t.Errorf("hwsim %q: exit %d, output %q; want %d and %q", tc.args, code, out+errs, tc.code, tc.out)
		}
	}
}
