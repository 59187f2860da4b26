package persistence

import (
	"testing"
	"testing/fstest"
)

// TestReadMigrations: files come back by version with their SQL.
func TestReadMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"migrations/0002_more.sql": &fstest.MapFile{Data: []byte("SELECT 2;")},
		"migrations/0001_init.sql": &fstest.MapFile{Data: []byte("SELECT 1;")},
	}
	ms, err := ReadMigrations(fsys)
	if err != nil {
		t.Fatalf("ReadMigrations = %v, want nil", err)
	}
	if len(ms) != 2 || ms[0].Version != 1 || ms[1].Version != 2 {
		t.Fatalf("ReadMigrations = %+v, want versions 1 and 2 in order", ms)
	}
}

func TestReadMigrationsRejects(t *testing.T) {
	tests := []struct {
		name  string
		files []string
	}{
		{"gap", []string{"0001_a.sql", "0003_c.sql"}},
		{"not from 1", []string{"0002_b.sql"}},
		{"duplicate", []string{"0001_a.sql", "0001_b.sql"}},
		{"bad name", []string{"0001_a.sql", "2_b.sql"}},
		{"upper case", []string{"0001_Init.sql"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			if ms, err := ReadMigrations(fsys); err == nil {
				t.Errorf("ReadMigrations(%v) = %d migrations, nil, want an error", tt.files, len(ms))
			}
		})
	}
}
