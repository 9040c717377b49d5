package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// privateDB makes the SQLite database at path owner-only (0600) before it
// is opened: created empty with that mode when missing (SQLite gives its
// -wal and -shm files the database's mode), chmod'ed when an older release
// left it, or its -wal and -shm, at 0644 (issue 13 item 5).
func privateDB(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	return nil
}
