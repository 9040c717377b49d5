package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackagesInstall builds both packages from a real authorizer binary
// (and a stand-in terminald: gocv makes the real one slow to build),
// unpacks them with dpkg into a throw-away root and checks the layout, the
// conffiles, the maintainer scripts and that the installed authorizer runs
// on the installed config.
func TestPackagesInstall(t *testing.T) {
	for _, tool := range []string{"dpkg", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-ldflags", "-X main.version=1.4.2-test", "-o", filepath.Join(bin, "authorizer"), "campuspay/server/cmd/authorizer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(bin, "terminald"), []byte("#!/bin/sh\necho terminald stand-in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "terminald-nocam"), []byte("#!/bin/sh\necho terminald nocam stand-in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	debs, err := Build(Options{Bin: bin, Root: "../..", Out: out, Version: "v1.4.2-3-gabcdef", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(debs) != 3 || !strings.HasSuffix(debs[0], "campuspay-authorizer_1.4.2+3+gabcdef_amd64.deb") {
		t.Fatalf("packages %v", debs)
	}
	// The camera-less terminald replaces the camera build.
	if out, err := exec.Command("dpkg-deb", "-f", debs[2], "Package", "Conflicts", "Replaces").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "Package: campuspay-terminald-nocam") || !strings.Contains(string(out), "Conflicts: campuspay-terminald") {
		t.Errorf("nocam package: %v\n%s", err, out)
	}
	root := t.TempDir()
	for _, deb := range debs[:2] {
		if out, err := exec.Command("dpkg", "-x", deb, root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg -x %s: %v\n%s", deb, err, out)
		}
	}
	modes := map[string]os.FileMode{
		"usr/bin/authorizer": 0o755,
		"usr/bin/terminald":  0o755,
		"lib/systemd/system/campuspay-authorizer.service":            0o644,
		"lib/systemd/system/campuspay-terminald.service":             0o644,
		"etc/campuspay/authorizer.json":                              0o644,
		"etc/campuspay/authorizer.env":                               0o600,
		"etc/campuspay/terminal.json":                                0o644,
		"var/lib/campuspay":                                          os.ModeDir | 0o700,
		"var/lib/campuspay/authorizer":                               os.ModeDir | 0o700,
		"var/lib/campuspay/terminald":                                os.ModeDir | 0o700,
		"usr/share/doc/campuspay-authorizer/grafana-authorizer.json": 0o644,
	}
	for p, want := range modes {
		st, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := st.Mode() & (os.ModeDir | os.ModePerm); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	// The units start what the packages install, as notify services.
	for unit, exe := range map[string]string{"campuspay-authorizer.service": "/usr/bin/authorizer", "campuspay-terminald.service": "/usr/bin/terminald"} {
		b, err := os.ReadFile(filepath.Join(root, "lib/systemd/system", unit))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Type=notify", "WatchdogSec=", "ExecStart=" + exe + " ", "User=campuspay", "StateDirectoryMode=0700", "/etc/campuspay/"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %q", unit, want)
			}
		}
	}
	// systemd itself accepts the units (the binary path swapped for one
	// that exists on this host).
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		for unit, exe := range map[string]string{"campuspay-authorizer.service": "/usr/bin/authorizer", "campuspay-terminald.service": "/usr/bin/terminald"} {
			b, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system", unit))
			p := filepath.Join(t.TempDir(), unit)
			os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "ExecStart="+exe, "ExecStart=/bin/true")), 0o644)
			if out, err := exec.Command(sa, "verify", p).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
			}
		}
	}
	// Control data: conffiles, dependencies, the user made before unpacking.
	ctl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-e", debs[0], ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
	}
	conffiles, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
	for _, want := range []string{"/etc/campuspay/authorizer.json", "/etc/campuspay/authorizer.env"} {
		if !strings.Contains(string(conffiles), want) {
			t.Errorf("conffiles %q lack %s", conffiles, want)
		}
	}
	control, _ := os.ReadFile(filepath.Join(ctl, "control"))
	for _, want := range []string{"Package: campuspay-authorizer", "Version: 1.4.2+3+gabcdef", "Architecture: amd64", "Depends: passwd, libc6"} {
		if !strings.Contains(string(control), want) {
			t.Errorf("control lacks %q:\n%s", want, control)
		}
	}
	for script, want := range map[string]string{"preinst": "useradd --system", "postinst": "chmod 0700", "prerm": "systemctl stop campuspay-authorizer.service"} {
		b, err := os.ReadFile(filepath.Join(ctl, script))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q: %v", script, want, err)
		}
		if out, err := exec.Command("sh", "-n", filepath.Join(ctl, script)).CombinedOutput(); err != nil {
			t.Errorf("%s: %v %s", script, err, out)
		}
	}
	// The installed binary runs, on the installed config, over the data
	// folder the package made.
	exe := filepath.Join(root, "usr/bin/authorizer")
	if out, err := exec.Command(exe, "--version").Output(); err != nil || strings.TrimSpace(string(out)) != "authorizer 1.4.2-test" {
		t.Fatalf("--version: %q %v", out, err)
	}
	data := filepath.Join(root, "var/lib/campuspay/authorizer")
	cmd := exec.Command(exe, "--data", data, "--config", filepath.Join(root, "etc/campuspay/authorizer.json"), "ledger", "check")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "ledger OK") {
		t.Fatalf("ledger check with the packaged config: %v\n%s", err, out)
	}
}

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{"v1.2.0": "1.2.0", "1.2.0-3-gabc-dirty": "1.2.0+3+gabc+dirty", "d5134f3": "0.0.0+gitd5134f3", "dev": "0.0.0+gitdev", "": "0.0.0+git"} {
		if got := debVersion(in); got != want {
			t.Errorf("debVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
