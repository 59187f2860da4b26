package main

import (
	"os"
	"testing"

	"github.com/bookd/bookd/persistence/testserver"
)

func TestMain(m *testing.M) { os.Exit(testserver.Main(m)) }

// forEachStore runs fn once on the embedded SQLite store and once on a
// fresh database of a real PostgreSQL server; store is the serve flags that
// select it.
func forEachStore(t *testing.T, fn func(t *testing.T, store []string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, nil) })
	t.Run("postgres", func(t *testing.T) { fn(t, []string{"--postgres", testserver.DatabaseT(t)}) })
}
