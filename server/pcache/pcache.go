// Package pcache puts a thin wrapper around SQLite's own page cache, at
// init, before any connection is opened. It changes one thing: the page
// that SQLite parks for a moment under the lock-byte page's number while
// it swaps two pages' numbers (balance_nonroot, after an insert splits a
// page) is kept under a key that does not make the cache scan its whole
// hash table at the next commit. Without it the wallet writer walked its
// 64 MiB cache, about 13,000 page headers, on every commit
// (docs/money-path.md). Everything else goes to SQLite's cache unchanged.
//
// Import it (the wallet's SQLite store does) and check Err when opening a
// database: the wrapper can only be installed before SQLite initializes.
package pcache

/*
#cgo CFLAGS: -O2
int pcache_install(void);
long long pcache_parked(void);
int pcache_selfcheck(void);
*/
import "C"

import (
	"fmt"

	_ "github.com/mattn/go-sqlite3" // the SQLite whose page cache this wraps
)

var installErr error

func init() {
	// Package initialization runs before main and before any importer's
	// code, so no connection can have initialized SQLite yet.
	if rc := C.pcache_install(); rc != 0 {
		installErr = fmt.Errorf("pcache: install the SQLite page cache wrapper: result code %d (SQLite already initialized, or not linked in)", int(rc))
	}
}

// Err reports whether the wrapper is in place: nil if it is.
func Err() error { return installErr }

// Parked returns how many times SQLite has parked a page under the
// lock-byte page's number since the process started: each one would have
// cost the next commit a scan of its connection's whole cache.
func Parked() int64 { return int64(C.pcache_parked()) }

// selfCheck runs one exact sequence of page cache calls through the
// wrapper (pcache.c: pcache_selfcheck); for the tests, which cannot use
// cgo themselves. SQLite must have been initialized (a connection opened).
func selfCheck() error {
	if step := C.pcache_selfcheck(); step != 0 {
		return fmt.Errorf("pcache: self-check failed at step %d", int(step))
	}
	return nil
}
