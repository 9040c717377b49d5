// An SQLite VFS that wraps the default one and gathers the frames a
// connection appends to its WAL into one write. SQLite writes each frame as
// two pwrite calls (its 24-byte header, then the page), so a commit of a
// hundred pages is two hundred system calls; here it is one, made when
// SQLite syncs the WAL at commit (synchronous=FULL), reads back what it
// wrote, asks the file's size, truncates it or closes it.
//
// Only for connections with synchronous=FULL: with NORMAL a commit does not
// sync the WAL, and another connection could see the commit in the
// wal-index before its frames reached the file.

#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

// The sqlite3 symbols come from go-sqlite3's copy of SQLite, linked into the
// same binary. Weak, so that cgo's own link of this package alone (which
// has no SQLite) does not fail; walbuf_register checks they resolved.
extern sqlite3_vfs *sqlite3_vfs_find(const char *) __attribute__((weak));
extern int sqlite3_vfs_register(sqlite3_vfs *, int) __attribute__((weak));

#define WALBUF_CAP (8 << 20) // a batch's frames; a larger run is written as it comes

typedef struct WbFile {
	sqlite3_file base;
	sqlite3_file *real;  // the wrapped file, in the bytes after this struct
	int wal;             // opened as a WAL: its appends are gathered
	char *buf;           // gathered bytes, for the file's offset off
	sqlite3_int64 off;
	int len;
} WbFile;

// Writes to WALs that SQLite asked for and that reached the file, for
// walbuf_stats (the tests and the store's metrics).
static long long wbAsked, wbMade;

void walbuf_stats(long long *asked, long long *made) {
	*asked = __atomic_load_n(&wbAsked, __ATOMIC_RELAXED);
	*made = __atomic_load_n(&wbMade, __ATOMIC_RELAXED);
}

static sqlite3_vfs wbVfs;
static sqlite3_vfs *wbReal;

#define REAL(f) (((WbFile *)(f))->real)

// The unix VFS writes at most WALBUF_CHUNK bytes a call (it masks the
// length to 17 bits and reports SQLITE_FULL for the rest).
#define WALBUF_CHUNK 0x1ffff

// wbWriteOut writes n bytes at off through the real file, in chunks it
// takes whole.
static int wbWriteOut(WbFile *f, const char *b, int n, sqlite3_int64 off) {
	while (n > 0) {
		int k = n < WALBUF_CHUNK ? n : WALBUF_CHUNK;
		__atomic_add_fetch(&wbMade, 1, __ATOMIC_RELAXED);
		int rc = f->real->pMethods->xWrite(f->real, b, k, off);
		if (rc != SQLITE_OK) return rc;
		b += k;
		off += k;
		n -= k;
	}
	return SQLITE_OK;
}

static int wbFlush(WbFile *f) {
	if (f->len == 0) return SQLITE_OK;
	int n = f->len;
	f->len = 0;
	return wbWriteOut(f, f->buf, n, f->off);
}

static int wbClose(sqlite3_file *p) {
	WbFile *f = (WbFile *)p;
	int rc = wbFlush(f);
	int rc2 = f->real->pMethods->xClose(f->real);
	free(f->buf);
	f->buf = 0;
	return rc != SQLITE_OK ? rc : rc2;
}

static int wbRead(sqlite3_file *p, void *b, int n, sqlite3_int64 off) {
	WbFile *f = (WbFile *)p;
	if (f->len > 0 && off < f->off + f->len && off + n > f->off) {
		int rc = wbFlush(f);
		if (rc != SQLITE_OK) return rc;
	}
	return f->real->pMethods->xRead(f->real, b, n, off);
}

static int wbWrite(sqlite3_file *p, const void *b, int n, sqlite3_int64 off) {
	WbFile *f = (WbFile *)p;
	if (!f->wal) return f->real->pMethods->xWrite(f->real, b, n, off);
	__atomic_add_fetch(&wbAsked, 1, __ATOMIC_RELAXED);
	if (f->len > 0 && off >= f->off && off + n <= f->off + f->len) {
		// A frame rewritten in the same transaction (its checksum or a
		// page written again): it is still in the buffer.
		memcpy(f->buf + (off - f->off), b, n);
		return SQLITE_OK;
	}
	if (f->len > 0 && off == f->off + f->len && f->len + n <= WALBUF_CAP) {
		memcpy(f->buf + f->len, b, n);
		f->len += n;
		return SQLITE_OK;
	}
	if (f->len > 0 && off + n <= f->off) {
		// A frame rewritten below the gathered ones (its page spilled
		// to the WAL earlier in the transaction): only the commit's sync
		// orders writes, so it goes out now and the buffer stays.
		return wbWriteOut(f, b, n, off);
	}
	int rc = wbFlush(f);
	if (rc != SQLITE_OK) return rc;
	if (n > WALBUF_CAP) return wbWriteOut(f, b, n, off);
	if (f->buf == 0) {
		f->buf = malloc(WALBUF_CAP);
		if (f->buf == 0) return wbWriteOut(f, b, n, off);
	}
	memcpy(f->buf, b, n);
	f->off = off;
	f->len = n;
	return SQLITE_OK;
}

static int wbTruncate(sqlite3_file *p, sqlite3_int64 size) {
	WbFile *f = (WbFile *)p;
	int rc = wbFlush(f);
	if (rc != SQLITE_OK) return rc;
	return f->real->pMethods->xTruncate(f->real, size);
}

static int wbSync(sqlite3_file *p, int flags) {
	WbFile *f = (WbFile *)p;
	int rc = wbFlush(f);
	if (rc != SQLITE_OK) return rc;
	return f->real->pMethods->xSync(f->real, flags);
}

static int wbFileSize(sqlite3_file *p, sqlite3_int64 *size) {
	WbFile *f = (WbFile *)p;
	int rc = wbFlush(f);
	if (rc != SQLITE_OK) return rc;
	return f->real->pMethods->xFileSize(f->real, size);
}

static int wbFileControl(sqlite3_file *p, int op, void *arg) {
	WbFile *f = (WbFile *)p;
	// Some controls touch the file (a size hint extends it); none is on
	// the path of a frame's write, so flushing first costs nothing.
	int rc = wbFlush(f);
	if (rc != SQLITE_OK) return rc;
	return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wbLock(sqlite3_file *p, int l) { return REAL(p)->pMethods->xLock(REAL(p), l); }
static int wbUnlock(sqlite3_file *p, int l) { return REAL(p)->pMethods->xUnlock(REAL(p), l); }
static int wbCheckReservedLock(sqlite3_file *p, int *out) { return REAL(p)->pMethods->xCheckReservedLock(REAL(p), out); }
static int wbSectorSize(sqlite3_file *p) { return REAL(p)->pMethods->xSectorSize(REAL(p)); }
static int wbDeviceCharacteristics(sqlite3_file *p) { return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p)); }
static int wbShmMap(sqlite3_file *p, int pg, int sz, int ext, void volatile **pp) { return REAL(p)->pMethods->xShmMap(REAL(p), pg, sz, ext, pp); }
static int wbShmLock(sqlite3_file *p, int off, int n, int flags) { return REAL(p)->pMethods->xShmLock(REAL(p), off, n, flags); }
static void wbShmBarrier(sqlite3_file *p) { REAL(p)->pMethods->xShmBarrier(REAL(p)); }
static int wbShmUnmap(sqlite3_file *p, int del) { return REAL(p)->pMethods->xShmUnmap(REAL(p), del); }
static int wbFetch(sqlite3_file *p, sqlite3_int64 off, int n, void **pp) { return REAL(p)->pMethods->xFetch(REAL(p), off, n, pp); }
static int wbUnfetch(sqlite3_file *p, sqlite3_int64 off, void *pg) { return REAL(p)->pMethods->xUnfetch(REAL(p), off, pg); }

static const sqlite3_io_methods wbMethods = {
	3,
	wbClose, wbRead, wbWrite, wbTruncate, wbSync, wbFileSize,
	wbLock, wbUnlock, wbCheckReservedLock, wbFileControl,
	wbSectorSize, wbDeviceCharacteristics,
	wbShmMap, wbShmLock, wbShmBarrier, wbShmUnmap,
	wbFetch, wbUnfetch,
};

static int wbOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *p, int flags, int *outFlags) {
	WbFile *f = (WbFile *)p;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)&f[1];
	int rc = wbReal->xOpen(wbReal, name, f->real, flags, outFlags);
	if (f->real->pMethods == 0) return rc; // nothing to close
	if (f->real->pMethods->iVersion < 3) {
		// Every method above is delegated as version 3; an older real
		// file would be called past its table.
		f->real->pMethods->xClose(f->real);
		return SQLITE_CANTOPEN;
	}
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	p->pMethods = &wbMethods;
	return rc;
}

static int wbDelete(sqlite3_vfs *v, const char *z, int syncDir) { return wbReal->xDelete(wbReal, z, syncDir); }
static int wbAccess(sqlite3_vfs *v, const char *z, int fl, int *out) { return wbReal->xAccess(wbReal, z, fl, out); }
static int wbFullPathname(sqlite3_vfs *v, const char *z, int n, char *out) { return wbReal->xFullPathname(wbReal, z, n, out); }
static void *wbDlOpen(sqlite3_vfs *v, const char *z) { return wbReal->xDlOpen(wbReal, z); }
static void wbDlError(sqlite3_vfs *v, int n, char *z) { wbReal->xDlError(wbReal, n, z); }
static void (*wbDlSym(sqlite3_vfs *v, void *h, const char *z))(void) { return wbReal->xDlSym(wbReal, h, z); }
static void wbDlClose(sqlite3_vfs *v, void *h) { wbReal->xDlClose(wbReal, h); }
static int wbRandomness(sqlite3_vfs *v, int n, char *out) { return wbReal->xRandomness(wbReal, n, out); }
static int wbSleep(sqlite3_vfs *v, int us) { return wbReal->xSleep(wbReal, us); }
static int wbCurrentTime(sqlite3_vfs *v, double *t) { return wbReal->xCurrentTime(wbReal, t); }
static int wbGetLastError(sqlite3_vfs *v, int n, char *z) { return wbReal->xGetLastError(wbReal, n, z); }
static int wbCurrentTimeInt64(sqlite3_vfs *v, sqlite3_int64 *t) { return wbReal->xCurrentTimeInt64(wbReal, t); }

// walbuf_register registers the VFS under name, wrapping the default VFS.
// It returns an SQLite result code; SQLITE_ERROR if SQLite is not linked
// in or its default VFS is older than version 2.
int walbuf_register(const char *name) {
	if (sqlite3_vfs_find == 0 || sqlite3_vfs_register == 0) return SQLITE_ERROR;
	if (wbReal != 0) return SQLITE_OK;
	sqlite3_vfs *real = sqlite3_vfs_find(0);
	if (real == 0 || real->iVersion < 2) return SQLITE_ERROR;
	wbReal = real;
	memset(&wbVfs, 0, sizeof(wbVfs));
	wbVfs.iVersion = 2;
	wbVfs.szOsFile = (int)sizeof(WbFile) + real->szOsFile;
	wbVfs.mxPathname = real->mxPathname;
	wbVfs.zName = name;
	wbVfs.xOpen = wbOpen;
	wbVfs.xDelete = wbDelete;
	wbVfs.xAccess = wbAccess;
	wbVfs.xFullPathname = wbFullPathname;
	wbVfs.xDlOpen = wbDlOpen;
	wbVfs.xDlError = wbDlError;
	wbVfs.xDlSym = wbDlSym;
	wbVfs.xDlClose = wbDlClose;
	wbVfs.xRandomness = wbRandomness;
	wbVfs.xSleep = wbSleep;
	wbVfs.xCurrentTime = wbCurrentTime;
	wbVfs.xGetLastError = wbGetLastError;
	wbVfs.xCurrentTimeInt64 = wbCurrentTimeInt64;
	return sqlite3_vfs_register(&wbVfs, 0);
}
