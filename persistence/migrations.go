package persistence

import (
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
)

// Each SQL store keeps its schema as numbered migrations embedded in the
// binary (migrations/NNNN_name.sql, from 0001 without gaps); a released file
// is never edited, a change is a new file.

// Migration is one numbered schema step of a store.
type Migration struct {
	Version int
	Name    string // the file name
	SQL     string
}

// migrationName is how a migration file is named: NNNN_name.sql.
var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// ReadMigrations returns the migrations in fsys's folder "migrations", by
// version. It fails on a badly named file, a duplicate or a gap.
func ReadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %q: name is not NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("migration %q: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %q: want version %04d (versions start at 0001 and have no gaps)", m.Name, i+1)
		}
	}
	return ms, nil
}
