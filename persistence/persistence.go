// Package persistence defines what bookd keeps on disk: the journal of every
// resource actor (append-only event streams with a conditional append that
// fences out a second writer) and the catalog of providers, listings and
// resources the edge serves.
//
// Implementations live in sub-packages named after their dependency
// (persistence/sqlite, persistence/postgres). Each must pass the conformance
// suite in persistence/conformance.
package persistence

import (
	"context"
	"io"
)

// Store is everything a node needs from its storage backend.
type Store interface {
	Journal
	Catalog
	Accounts
	// Ping reports whether the store answers; /readyz uses it.
	Ping(ctx context.Context) error
	io.Closer
}
