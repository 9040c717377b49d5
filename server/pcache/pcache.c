// A page cache for SQLite that forwards every call to SQLite's own (pcache1)
// and changes one thing: the page that balance_nonroot parks for a moment
// under the lock-byte page's number, while it swaps two pages' numbers, is
// kept under key 0 instead. pcache1 remembers the largest key it has ever
// held until the next truncation, and a commit truncates the cache to the
// database's size: when that largest key is more than the hash table's
// size past the end (the lock-byte page is page 262,145 of 4 KiB pages),
// it walks the whole hash table and every page in it. With the wallet
// writer's 64 MiB cache that was about 13,000 cold page headers on every
// commit, after any insert that split a page (docs/money-path.md).
//
// Key 0 is free: SQLite numbers pages from 1 and never asks for page 0, and
// the lock-byte page is never read or written (the pager refuses it), so
// the mapping is one to one on every key SQLite uses. The parked page lives
// only between two of balance_nonroot's rekeys, inside one call under the
// connection's mutex; no truncation or fetch of that number comes between.

#include <stdlib.h>
#include <sqlite3.h>

// go-sqlite3's SQLite, linked into the same binary; weak so that cgo's link
// of this package alone (which has no SQLite) does not fail.
extern int sqlite3_config(int, ...) __attribute__((weak));

typedef struct PcCache {
	sqlite3_pcache *real;
	unsigned lock; // the lock-byte page's number at this cache's page size
} PcCache;

static sqlite3_pcache_methods2 pcReal; // SQLite's own, as it was before
static sqlite3_pcache_methods2 pcWrap;
static long long pcParked;             // rekeys to the lock-byte page's number

static unsigned pcKey(PcCache *c, unsigned k) { return k == c->lock ? 0 : k; }

static int pcInit(void *arg) { return pcReal.xInit(pcReal.pArg); }
static void pcShutdown(void *arg) {
	if (pcReal.xShutdown) pcReal.xShutdown(pcReal.pArg);
}

static sqlite3_pcache *pcCreate(int szPage, int szExtra, int bPurgeable) {
	PcCache *c = malloc(sizeof(PcCache));
	if (c == 0) return 0;
	c->real = pcReal.xCreate(szPage, szExtra, bPurgeable);
	if (c->real == 0) {
		free(c);
		return 0;
	}
	// PENDING_BYTE (0x40000000) / page size + 1: PAGER_SJ_PGNO.
	c->lock = szPage > 0 ? (unsigned)(0x40000000 / szPage) + 1 : 0;
	return (sqlite3_pcache *)c;
}

static void pcCachesize(sqlite3_pcache *p, int n) {
	PcCache *c = (PcCache *)p;
	pcReal.xCachesize(c->real, n);
}

static int pcPagecount(sqlite3_pcache *p) {
	PcCache *c = (PcCache *)p;
	return pcReal.xPagecount(c->real);
}

static sqlite3_pcache_page *pcFetch(sqlite3_pcache *p, unsigned key, int create) {
	PcCache *c = (PcCache *)p;
	return pcReal.xFetch(c->real, pcKey(c, key), create);
}

static void pcUnpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard) {
	PcCache *c = (PcCache *)p;
	pcReal.xUnpin(c->real, pg, discard);
}

static void pcRekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned from, unsigned to) {
	PcCache *c = (PcCache *)p;
	if (to == c->lock) __atomic_add_fetch(&pcParked, 1, __ATOMIC_RELAXED);
	pcReal.xRekey(c->real, pg, pcKey(c, from), pcKey(c, to));
}

static void pcTruncate(sqlite3_pcache *p, unsigned limit) {
	PcCache *c = (PcCache *)p;
	pcReal.xTruncate(c->real, limit);
}

static void pcDestroy(sqlite3_pcache *p) {
	PcCache *c = (PcCache *)p;
	pcReal.xDestroy(c->real);
	free(c);
}

static void pcShrink(sqlite3_pcache *p) {
	PcCache *c = (PcCache *)p;
	if (pcReal.xShrink) pcReal.xShrink(c->real);
}

// pcache_install puts the wrapper in place of SQLite's page cache. It must
// run before SQLite initializes (the first connection opened, VFS found or
// registered): SQLITE_MISUSE after. SQLITE_ERROR if SQLite is not linked in.
int pcache_install(void) {
	if (sqlite3_config == 0) return SQLITE_ERROR;
	if (pcWrap.xFetch != 0) return SQLITE_OK;
	int rc = sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &pcReal);
	if (rc != SQLITE_OK) return rc;
	if (pcReal.xFetch == 0 || pcReal.xRekey == 0) return SQLITE_ERROR;
	pcWrap.iVersion = 1;
	pcWrap.pArg = 0;
	pcWrap.xInit = pcInit;
	pcWrap.xShutdown = pcShutdown;
	pcWrap.xCreate = pcCreate;
	pcWrap.xCachesize = pcCachesize;
	pcWrap.xPagecount = pcPagecount;
	pcWrap.xFetch = pcFetch;
	pcWrap.xUnpin = pcUnpin;
	pcWrap.xRekey = pcRekey;
	pcWrap.xTruncate = pcTruncate;
	pcWrap.xDestroy = pcDestroy;
	pcWrap.xShrink = pcShrink;
	rc = sqlite3_config(SQLITE_CONFIG_PCACHE2, &pcWrap);
	if (rc != SQLITE_OK) pcWrap.xFetch = 0;
	return rc;
}

long long pcache_parked(void) { return __atomic_load_n(&pcParked, __ATOMIC_RELAXED); }

// pcache_selfcheck runs one exact sequence of calls through the wrapper on
// a fresh cache of SQLite's own: the swap balance_nonroot makes (page 2 to
// the lock-byte page's number, then to 5) must find, move and drop the same
// page under every number, as SQLite's cache does. It returns 0, or the
// number of the step that failed. SQLite must be initialized.
int pcache_selfcheck(void) {
	if (pcWrap.xFetch == 0) return 1;
	sqlite3_pcache *c = pcWrap.xCreate(4096, 64, 1);
	if (c == 0) return 2;
	unsigned lock = ((PcCache *)c)->lock;
	int step = 0;
	sqlite3_pcache_page *p[4] = {0};
	for (unsigned k = 1; k <= 3; k++) {
		p[k] = pcWrap.xFetch(c, k, 2);
		if (p[k] == 0) { step = 3; goto out; }
	}
	if (lock != 262145) { step = 4; goto out; }
	pcWrap.xRekey(c, p[2], 2, lock);
	if (pcWrap.xFetch(c, lock, 0) != p[2]) { step = 5; goto out; }
	if (pcWrap.xFetch(c, 2, 0) != 0) { step = 6; goto out; }
	pcWrap.xRekey(c, p[2], lock, 5);
	if (pcWrap.xFetch(c, 5, 0) != p[2]) { step = 7; goto out; }
	if (pcWrap.xFetch(c, lock, 0) != 0) { step = 8; goto out; }
	if (pcWrap.xPagecount(c) != 3) { step = 9; goto out; }
	pcWrap.xTruncate(c, 4); // drops 5, keeps 1 and 3
	if (pcWrap.xFetch(c, 5, 0) != 0) { step = 10; goto out; }
	if (pcWrap.xFetch(c, 3, 0) != p[3] || pcWrap.xFetch(c, 1, 0) != p[1]) { step = 11; goto out; }
	if (pcWrap.xPagecount(c) != 2) { step = 12; goto out; }
out:
	pcWrap.xDestroy(c);
	return step;
}
