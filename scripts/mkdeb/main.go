// Command mkdeb builds the Debian packages of the authorizer and of
// terminald with nfpm (as a Go library: no tool to install):
//
//	go run ./scripts/mkdeb --bin bin --version 1.2.0 --out dist
//
// campuspay-authorizer and campuspay-terminald (and, when bin/ has
// terminald-nocam, campuspay-terminald-nocam: the same daemon without
// OpenCV for card and shower boxes, conflicting with the camera build) hold the binary in
// /usr/bin, the systemd unit (Type=notify, watchdog) in /lib/systemd/system,
// example configuration in /etc/campuspay (conffiles: an upgrade keeps the
// operator's edits) and the data folders /var/lib/campuspay/{authorizer,
// terminald} at 0700. Their maintainer scripts create the system user
// campuspay and give it the data folders; data is never removed, not even
// on purge. `make package` runs it after `make build`.
package main

import (
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	var o Options
	flag.StringVar(&o.Bin, "bin", "bin", "`folder` holding the built authorizer and terminald")
	flag.StringVar(&o.Root, "root", ".", "the repository's root `folder` (configs/)")
	flag.StringVar(&o.Out, "out", "dist", "output `folder` for the .deb files")
	flag.StringVar(&o.Version, "version", "0.0.0", "package `version` (a git describe is made Debian-valid)")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "Debian `architecture` of the binaries")
	flag.Parse()
	paths, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}

// Options say what to package and where to write it.
type Options struct {
	Bin, Root, Out string
	Version, Arch  string
	// MTime stamps every file (default: the SOURCE_DATE_EPOCH or now).
	MTime time.Time
}

// Build writes campuspay-authorizer_V_ARCH.deb, campuspay-terminald_V_ARCH.deb
// and, with bin/terminald-nocam, campuspay-terminald-nocam_V_ARCH.deb into
// o.Out and returns their paths.
func Build(o Options) ([]string, error) {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("out: %w", err)
	}
	tmp, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var out []string
	for _, p := range packages(o.Root) {
		path, err := p.build(o, tmp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		if path != "" {
			out = append(out, path)
		}
	}
	return out, nil
}

// pkg describes one package.
type pkg struct {
	name, binary, unit, description string
	// source is the file in --bin (default binary); optional packages are
	// skipped when it is missing.
	source    string
	optional  bool
	conflicts []string        // packages it replaces (same files)
	conf      []files.Content // under /etc/campuspay
	extra     []files.Content
	dataDir   string // /var/lib/campuspay/…
}

func packages(root string) []pkg {
	c := func(name string) string { return filepath.Join(root, "configs", name) }
	return []pkg{{
		name: "campuspay-authorizer", binary: "authorizer", unit: "authorizer.service",
		description: "Campus e-wallet central authorizer\n" +
			" Wallet rules, double-entry ledger, the students' HTTP API and web wallet,\n" +
			" MQTT handlers and an embedded broker for the campus payment terminals.",
		conf: []files.Content{
			{Source: c("authorizer.json"), Destination: "/etc/campuspay/authorizer.json", Type: files.TypeConfigNoReplace,
				FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			{Source: c("deb/authorizer.env"), Destination: "/etc/campuspay/authorizer.env", Type: files.TypeConfigNoReplace,
				FileInfo: &files.ContentFileInfo{Mode: 0o600}},
		},
		extra: []files.Content{
			{Source: c("grafana-authorizer.json"), Destination: "/usr/share/doc/campuspay-authorizer/grafana-authorizer.json",
				FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			{Source: c("mosquitto.conf"), Destination: "/usr/share/doc/campuspay-authorizer/examples/mosquitto.conf",
				FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			{Source: c("mosquitto.acl"), Destination: "/usr/share/doc/campuspay-authorizer/examples/mosquitto.acl",
				FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		},
		dataDir: "/var/lib/campuspay/authorizer",
	}, {
		name: "campuspay-terminald", binary: "terminald", unit: "terminald.service",
		description: "Campus payment terminal daemon\n" +
			" Drives one box's scanner, card reader, keypad, display and shower valve,\n" +
			" journals every transaction in SQLite and talks to the authorizer over MQTT.",
		conf: []files.Content{
			{Source: c("terminal-canteen-pos.json"), Destination: "/etc/campuspay/terminal.json", Type: files.TypeConfigNoReplace,
				FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		},
		extra: []files.Content{
			{Source: c("terminal-canteen-pos.json"), Destination: "/usr/share/doc/campuspay-terminald/examples/terminal-canteen-pos.json", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			{Source: c("terminal-card-tap.json"), Destination: "/usr/share/doc/campuspay-terminald/examples/terminal-card-tap.json", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			{Source: c("terminal-yungu-shower.json"), Destination: "/usr/share/doc/campuspay-terminald/examples/terminal-yungu-shower.json", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		},
		dataDir: "/var/lib/campuspay/terminald",
	}, {
		name: "campuspay-terminald-nocam", binary: "terminald", source: "terminald-nocam", unit: "terminald.service", optional: true,
		conflicts: []string{"campuspay-terminald"},
		description: "Campus payment terminal daemon, without the camera\n" +
			" terminald built without OpenCV (-tags nocamera) for card-tap and shower\n" +
			" boxes: serial scanners, card readers, keypads, displays and valves only.",
		conf: []files.Content{
			{Source: c("terminal-card-tap.json"), Destination: "/etc/campuspay/terminal.json", Type: files.TypeConfigNoReplace,
				FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		},
		extra: []files.Content{
			{Source: c("terminal-card-tap.json"), Destination: "/usr/share/doc/campuspay-terminald-nocam/examples/terminal-card-tap.json", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			{Source: c("terminal-yungu-shower.json"), Destination: "/usr/share/doc/campuspay-terminald-nocam/examples/terminal-yungu-shower.json", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		},
		dataDir: "/var/lib/campuspay/terminald",
	}}
}

func (p pkg) build(o Options, tmp string) (string, error) {
	src := p.source
	if src == "" {
		src = p.binary
	}
	bin := filepath.Join(o.Bin, src)
	if _, err := os.Stat(bin); err != nil && p.optional {
		return "", nil
	}
	if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s: not an executable (run make build first): %v", bin, err)
	}
	unitName := "campuspay-" + strings.TrimSuffix(p.unit, ".service") + ".service"
	// prerm names the unit.
	prermSrc, err := os.ReadFile(filepath.Join(o.Root, "configs", "deb", "prerm.sh"))
	if err != nil {
		return "", err
	}
	prerm := filepath.Join(tmp, p.name+".prerm")
	if err := os.WriteFile(prerm, []byte(strings.ReplaceAll(string(prermSrc), "@UNIT@", unitName)), 0o755); err != nil {
		return "", err
	}
	contents := files.Contents{
		{Source: bin, Destination: "/usr/bin/" + p.binary, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: filepath.Join(o.Root, "configs", p.unit), Destination: "/lib/systemd/system/" + unitName,
			FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Destination: "/etc/campuspay", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Destination: "/var/lib/campuspay", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o700}},
		{Destination: p.dataDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o700}},
	}
	for _, c := range append(append([]files.Content{}, p.conf...), p.extra...) {
		c := c
		contents = append(contents, &c)
	}
	deps, err := sharedLibDepends(bin)
	if err != nil {
		return "", err
	}
	info := &nfpm.Info{
		Name:          p.name,
		Arch:          o.Arch,
		Platform:      "linux",
		Version:       debVersion(o.Version),
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "campuspay operators <ops@campuspay.invalid>",
		Description:   p.description,
		Vendor:        "campuspay",
		License:       "Proprietary",
		MTime:         o.MTime,
		Overridables: nfpm.Overridables{
			Depends:   append([]string{"passwd"}, deps...),
			Conflicts: p.conflicts,
			Replaces:  p.conflicts,
			Contents:  contents,
			Scripts: nfpm.Scripts{
				PreInstall:  filepath.Join(o.Root, "configs", "deb", "preinst.sh"),
				PostInstall: filepath.Join(o.Root, "configs", "deb", "postinst.sh"),
				PreRemove:   prerm,
				PostRemove:  filepath.Join(o.Root, "configs", "deb", "postrm.sh"),
			},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("prepare: %w", err)
	}
	packager, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	path := filepath.Join(o.Out, packager.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("package: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, nil
}

// sharedLibDepends names the Debian packages that hold the shared libraries
// bin links to directly (its DT_NEEDED entries, found through ldd and
// dpkg -S on the build host): terminald needs Debian's OpenCV runtime,
// the authorizer only libc6. Without ldd or dpkg it returns none.
func sharedLibDepends(bin string) ([]string, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, nil // not an ELF file (a test's stand-in)
	}
	needed, err := f.ImportedLibraries()
	f.Close()
	if err != nil || len(needed) == 0 {
		return nil, nil
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, nil
	}
	paths := map[string]string{} // soname → path
	for _, l := range strings.Split(string(out), "\n") {
		if name, rest, ok := strings.Cut(strings.TrimSpace(l), " => "); ok {
			if fs := strings.Fields(rest); len(fs) > 0 && strings.HasPrefix(fs[0], "/") {
				paths[name] = fs[0]
			}
		}
	}
	seen := map[string]bool{}
	var deps []string
	for _, so := range needed {
		p := paths[so]
		if p == "" {
			return nil, fmt.Errorf("%s: ldd does not resolve %s", bin, so)
		}
		pkg := ""
		candidates := []string{p, "/usr" + p}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, real)
		}
		for _, c := range candidates {
			if out, err := exec.Command("dpkg", "-S", c).Output(); err == nil {
				pkg, _, _ = strings.Cut(strings.TrimSpace(string(out)), ":")
				break
			}
		}
		if pkg == "" {
			return nil, fmt.Errorf("%s: no Debian package holds %s (%s)", bin, so, p)
		}
		if !seen[pkg] {
			seen[pkg] = true
			deps = append(deps, pkg)
		}
	}
	sort.Strings(deps)
	return deps, nil
}

var notDeb = regexp.MustCompile(`[^0-9A-Za-z.+~]`)

// debVersion makes a version Debian accepts: "v1.2.0-3-gabc-dirty" becomes
// "1.2.0+3+gabc+dirty", one without a leading digit "0.0.0+git…".
func debVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	v = notDeb.ReplaceAllString(v, "+")
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0.0.0+git" + strings.TrimLeft(v, "+")
	}
	return v
}
