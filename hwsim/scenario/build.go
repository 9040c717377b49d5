package scenario

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Build builds the project's commands for process-level tests: once per
// test binary, into a temporary folder that Remove (from TestMain) deletes.
// The web wallet's WebAssembly is built first: the authorizer embeds it.
type Build struct {
	Cmds []string // module-relative packages, e.g. "./server/cmd/authorizer"

	once sync.Once
	dir  string
	err  error
}

// Dir builds on first use and returns the folder of the binaries; a
// failed build fails t.
func (b *Build) Dir(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "campuspay-bin-"); b.err != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("bash", "scripts/build-wasm.sh")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build-wasm: %v\n%s", err, out)
			return
		}
		cmd = exec.Command("go", append([]string{"build", "-o", b.dir + "/"}, b.Cmds...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// Remove deletes the built binaries.
func (b *Build) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
