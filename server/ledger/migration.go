package ledger

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migration is one numbered schema file of a Store, named NNNN_what.sql.
type Migration struct {
	Version int
	Path    string // in the fs.FS it was listed from
}

// Migrations lists the files matching pattern (such as "migrations/*.sql")
// in fsys in version order. Versions are the number before the first '_'
// and must ascend; a repeated version or a badly named file is an error, so
// that a store never applies a misordered schema. Gaps are allowed: version
// numbers are reserved per line of work, and one may land before another.
func Migrations(fsys fs.FS, pattern string) ([]Migration, error) {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, err
	}
	var list []Migration
	for _, n := range names { // Glob returns them sorted; versions must also ascend
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_what.sql", base)
		}
		if len(list) > 0 && v <= list[len(list)-1].Version {
			return nil, fmt.Errorf("migration %s: version %d does not follow %d", base, v, list[len(list)-1].Version)
		}
		list = append(list, Migration{v, n})
	}
	return list, nil
}

// LatestMigration is the newest version among Migrations(fsys, pattern), 0
// when there are none: the schema version a store migrates to.
func LatestMigration(fsys fs.FS, pattern string) (int, error) {
	list, err := Migrations(fsys, pattern)
	if err != nil || len(list) == 0 {
		return 0, err
	}
	return list[len(list)-1].Version, nil
}
