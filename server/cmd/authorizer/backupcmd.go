package main

import (
	"fmt"

	"campuspay/server/backup"
)

// backup writes a consistent online backup of the data folder into DIR
// (server/backup): safe while serve runs and payments flow.
func (c *cli) backup(args []string) int {
	fs := c.newFlags("backup", "backup DIR\n\nWrites a consistent copy of every database (SQLite VACUUM INTO, safe while serve runs),\nthe keys and the other files of the data folder into DIR (new or empty), with a manifest.")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if err := c.sqliteOnly("backup"); err != nil {
		return c.fail(err)
	}
	m, err := backup.Create(c.ctx, c.common.data, fs.Arg(0), version)
	if err != nil {
		return c.fail(err)
	}
	var bytes int64
	for _, f := range m.Files {
		bytes += f.Bytes
	}
	fmt.Fprintf(c.out, "backup written to %s: %d files, %d bytes, ledger schema %d\n", fs.Arg(0), len(m.Files), bytes, m.LedgerSchema)
	return 0
}

// restore copies a backup into the (empty) data folder after verifying it.
func (c *cli) restore(args []string) int {
	fs := c.newFlags("restore", "restore DIR\n\nVerifies the backup in DIR (manifest, checksums, database integrity, schema version)\nand copies it into --data, which must hold no database. Stop serve first; then run\n\"authorizer ledger check\".")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if err := c.sqliteOnly("restore"); err != nil {
		return c.fail(err)
	}
	m, err := backup.Restore(c.ctx, fs.Arg(0), c.common.data)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.out, "restored %d files from the backup of %s (%s) into %s\n", len(m.Files), m.Created.Format("2006-01-02 15:04:05Z"), m.Program, c.common.data)
	return 0
}
