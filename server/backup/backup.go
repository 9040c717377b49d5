// Package backup makes consistent online backups of the authorizer's data
// folder and restores them (DESIGN §6, operations).
//
// Each SQLite database is copied with VACUUM INTO on a read-only
// connection: SQLite writes a compacted copy of one read snapshot, so the
// copy is consistent while `authorizer serve` goes on committing payments
// (WAL mode: the reader never blocks the writer, nor the writer it). Every
// other file of the folder (issuer and seal keys, broker password entries,
// a config kept there) is copied as is. A manifest with each file's size
// and SHA-256 is written last: a folder without one is not a backup.
//
// A data folder made by this release has one database, wallet.db, with the
// ledger inside it: one snapshot holds both, consistent by construction.
// A folder from the first release also has ledger.db, and order matters
// across the two: wallet.db is copied before
// ledger.db, so the ledger — the money's truth — is never older than the
// wallet records that refer to it. A payment acknowledged before the
// backup started is in both; one in flight during it may be in the ledger
// only, or recorded as unfinished in the wallet, which the authorizer's
// recovery settles at start (wallet.Service.Recover).
//
// PostgreSQL deployments back up with pg_dump or a base backup instead
// (docs/operations.md).
package backup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // SQLite driver

	ledgersqlite "campuspay/server/ledger/sqlite"
)

// ManifestFile is the name of the manifest inside a backup folder.
const ManifestFile = "manifest.json"

// Databases are the data folder's SQLite files, in backup order. Only
// wallet.db is always there; ledger.db is a first-release folder's.
var Databases = []string{"wallet.db", "ledger.db"}

// optional reports whether a data folder may lack the database name.
func optional(name string) bool { return name == "ledger.db" }

// HasLedgerFile reports whether the folder dir keeps its ledger in
// ledger.db (a first-release data folder): the file is there and not
// empty. An empty one is no ledger (the authorizer reads the layout the
// same way).
func HasLedgerFile(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "ledger.db"))
	return err == nil && fi.Size() > 0
}

// ledgerFile is the database of the folder dir that holds the ledger:
// ledger.db if it has one, else wallet.db.
func ledgerFile(dir string) string {
	if HasLedgerFile(dir) {
		return filepath.Join(dir, "ledger.db")
	}
	return filepath.Join(dir, "wallet.db")
}

// Manifest describes a backup.
type Manifest struct {
	Format  int       `json:"format"` // 1
	Created time.Time `json:"created"`
	Program string    `json:"program"` // the authorizer version that made it
	// LedgerSchema is the ledger's schema version (in ledger.db or
	// wallet.db).
	LedgerSchema int    `json:"ledger_schema"`
	Files        []File `json:"files"`
}

// File is one file of a backup.
type File struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// skipped are data-folder files that are not copied: SQLite's companions
// (the copy is made through SQLite), sockets, temporary files, the
// terminals' link states (rewritten by serve) and serve's lock.
func skipped(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "-wal") || strings.HasSuffix(name, "-shm") || strings.HasSuffix(name, "-journal") ||
		strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".sock") || name == "terminal-status.json" ||
		name == "serve.lock" // the running authorizer's lock
}

// Create writes a backup of the data folder data into dst, which must not
// exist or be empty. program names the running version.
func Create(ctx context.Context, data, dst, program string) (*Manifest, error) {
	if err := emptyDir(dst); err != nil {
		return nil, err
	}
	m := &Manifest{Format: 1, Created: time.Now().UTC(), Program: program}
	for _, name := range Databases {
		src := filepath.Join(data, name)
		if optional(name) && !HasLedgerFile(data) {
			continue // the ledger is inside wallet.db
		}
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		if err := vacuumInto(ctx, src, filepath.Join(dst, name)); err != nil {
			return nil, err
		}
	}
	v, err := ledgerSchema(ctx, ledgerFile(dst))
	if err != nil {
		return nil, err
	}
	m.LedgerSchema = v
	ents, err := os.ReadDir(data)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || skipped(name) || isDatabase(name) {
			continue
		}
		if err := copyFile(filepath.Join(data, name), filepath.Join(dst, name)); err != nil {
			return nil, err
		}
	}
	if m.Files, err = describe(dst); err != nil {
		return nil, err
	}
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := writeFile(filepath.Join(dst, ManifestFile), raw); err != nil {
		return nil, err
	}
	return m, syncDir(dst)
}

// Restore copies the backup in src into the data folder data, after
// checking every file against the manifest, each database's integrity and
// that the ledger's schema is not newer than this program's. data must
// hold no database: restore into a fresh folder, then move it in place.
func Restore(ctx context.Context, src, data string) (*Manifest, error) {
	m, err := Verify(ctx, src)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	for _, name := range Databases {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if _, err := os.Stat(filepath.Join(data, name+suffix)); err == nil {
				return nil, fmt.Errorf("restore: %s already holds %s: restore into an empty folder", data, name+suffix)
			}
		}
	}
	for _, f := range m.Files {
		if err := copyFile(filepath.Join(src, f.Name), filepath.Join(data, f.Name)); err != nil {
			return nil, err
		}
	}
	return m, syncDir(data)
}

// Verify checks a backup folder: its manifest, each file's size and
// SHA-256, each database's integrity and the ledger's schema version.
func Verify(ctx context.Context, src string) (*Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(src, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("backup %s: no manifest (not a complete backup): %w", src, err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("backup %s: manifest: %w", src, err)
	}
	if m.Format != 1 {
		return nil, fmt.Errorf("backup %s: manifest format %d not supported", src, m.Format)
	}
	names := map[string]bool{}
	for _, f := range m.Files {
		if f.Name != filepath.Base(f.Name) || f.Name == ManifestFile || strings.HasPrefix(f.Name, ".") {
			return nil, fmt.Errorf("backup %s: bad file name %q in the manifest", src, f.Name)
		}
		names[f.Name] = true
		got, err := describeFile(filepath.Join(src, f.Name))
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", src, err)
		}
		if got != f {
			return nil, fmt.Errorf("backup %s: %s differs from the manifest (%d bytes, sha256 %s; want %d, %s)", src, f.Name, got.Bytes, got.SHA256, f.Bytes, f.SHA256)
		}
	}
	for _, name := range Databases {
		if !names[name] && optional(name) {
			continue
		}
		if !names[name] {
			return nil, fmt.Errorf("backup %s: %s missing", src, name)
		}
		if err := integrity(ctx, filepath.Join(src, name)); err != nil {
			return nil, err
		}
	}
	// The ledger is in the backup: in its ledger.db, or inside wallet.db.
	if _, err := ledgerSchema(ctx, ledgerFile(src)); err != nil {
		return nil, fmt.Errorf("backup %s: %w", src, err)
	}
	want, err := ledgersqlite.LatestSchema()
	if err != nil {
		return nil, err
	}
	if m.LedgerSchema > want {
		return nil, fmt.Errorf("backup %s: ledger schema %d is newer than this program's %d: restore with the release that made it (%s)", src, m.LedgerSchema, want, m.Program)
	}
	return &m, nil
}

func isDatabase(name string) bool {
	for _, d := range Databases {
		if name == d {
			return true
		}
	}
	return false
}

// readOnly opens the SQLite file at path read-only.
func readOnly(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// vacuumInto copies the database src into dst (created 0600 and empty:
// VACUUM INTO fills an empty file and keeps its mode).
func vacuumInto(ctx context.Context, src, dst string) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f.Close()
	db, err := readOnly(src)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("backup: vacuum %s into %s: %w", src, dst, err)
	}
	return syncFile(dst)
}

func integrity(ctx context.Context, path string) error {
	db, err := readOnly(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("backup: integrity of %s: %w", path, err)
	}
	if res != "ok" {
		return fmt.Errorf("backup: integrity of %s: %s", path, res)
	}
	return nil
}

func ledgerSchema(ctx context.Context, path string) (int, error) {
	db, err := readOnly(path)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	v, err := ledgersqlite.FileSchemaVersion(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("backup: %s: %w", path, err)
	}
	return v, nil
}

// emptyDir makes dir (0700) or checks that it is empty.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("backup: %w", err)
	case len(ents) > 0:
		return fmt.Errorf("backup: %s is not empty", dir)
	}
	return os.Chmod(dir, 0o700)
}

func describe(dir string) ([]File, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var out []File
	for _, e := range ents {
		if e.Name() == ManifestFile {
			continue
		}
		f, err := describeFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func describeFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("read %s: %w", path, err)
	}
	return File{Name: filepath.Base(path), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// copyFile copies src to dst (0600) through a temporary file, synced.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
