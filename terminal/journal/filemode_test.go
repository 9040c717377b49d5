package journal

import (
	"os"
	"path/filepath"
	"testing"
)

// The journal holds the box's payments: it and its -wal and -shm are
// owner-only (issue 13 item 5).
func TestJournalFilesArePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, Options{Terminal: "T-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), st.Mode().Perm())
		}
	}
}
