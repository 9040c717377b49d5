// Package walbuf registers an SQLite VFS, "walbuf", that wraps the default
// one and gathers the frames a connection appends to its write-ahead log
// into one write per commit. SQLite writes every frame as two pwrite calls
// (the frame's header, then its page); the money path's writer commits
// batches of tens of payments, a few hundred frames, so the calls it saves
// are a measurable part of the writer's time (docs/money-path.md).
//
// The gathered bytes reach the file before SQLite syncs the WAL, reads it
// back, asks its size, truncates or closes it, so what a commit makes
// durable is unchanged. Use it only on connections with synchronous=FULL
// (open with "?vfs=walbuf"): with NORMAL, SQLite does not sync the WAL at
// commit and another connection could see a commit whose frames are still
// in this process's buffer.
package walbuf

/*
#cgo CFLAGS: -O2
#include <stdlib.h>
int walbuf_register(const char *name);
void walbuf_stats(long long *asked, long long *made);
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	_ "github.com/mattn/go-sqlite3" // the SQLite this VFS registers with
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The two counters on /metrics: their ratio is how many of SQLite's WAL
// writes each write to the file carries (about ten on the money path; near
// one would mean the buffer is being flushed early).
var (
	_ = promauto.NewCounterFunc(prometheus.CounterOpts{
		Name: "campuspay_walbuf_writes_asked_total",
		Help: "Writes SQLite asked of WAL files opened through the walbuf VFS (the wallet writer's).",
	}, func() float64 { a, _ := Stats(); return float64(a) })
	_ = promauto.NewCounterFunc(prometheus.CounterOpts{
		Name: "campuspay_walbuf_writes_made_total",
		Help: "Writes that reached those WAL files, each carrying one or more of those asked.",
	}, func() float64 { _, m := Stats(); return float64(m) })
)

// Name is the VFS's name, for the "vfs" parameter of a database's URI.
const Name = "walbuf"

var (
	once   sync.Once
	regErr error
)

// Register registers the VFS with the SQLite that go-sqlite3 links in; it
// is safe to call more than once and from several goroutines.
func Register() error {
	once.Do(func() {
		cs := C.CString(Name) // kept: SQLite holds the name as long as the VFS
		if rc := C.walbuf_register(cs); rc != 0 {
			C.free(unsafe.Pointer(cs))
			regErr = fmt.Errorf("walbuf: register the SQLite VFS: result code %d", int(rc))
		}
	})
	return regErr
}

// Stats returns how many writes SQLite asked of the WALs opened through
// this VFS and how many reached their files, since the process started.
func Stats() (asked, made int64) {
	var a, m C.longlong
	C.walbuf_stats(&a, &m)
	return int64(a), int64(m)
}
