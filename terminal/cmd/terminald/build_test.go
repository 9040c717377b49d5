package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The nocamera build of terminald (bin/terminald-nocam, for card-tap and
// shower boxes) must not link OpenCV: its ~260 shared libraries are most
// of a camera build's memory.
func TestNoCameraBuildLinksNoOpenCV(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "nocamera", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "gocv.io/") || strings.HasPrefix(p, "campuspay/terminal/device/camera") {
			t.Fatalf("the nocamera build links %s", p)
		}
	}
	// And the default build does (the test would pass vacuously otherwise).
	out, err = exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "gocv.io/x/gocv") {
		t.Fatal("the default build does not link gocv")
	}
}
