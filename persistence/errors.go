package persistence

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a create used an id that is already taken.
	ErrExists = errors.New("already exists")
	// ErrConflict is what every *ConflictError matches with errors.Is.
	ErrConflict = errors.New("journal conflict")
)

// ConflictError is returned by Journal.Append when the stream did not end at
// the expected seq: another writer got there first.
type ConflictError struct {
	Stream      string
	ExpectedSeq uint64
	// ActualSeq is the stream's last seq as the store saw it, when known.
	ActualSeq uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("journal conflict on %s: expected seq %d, stream is at %d", e.Stream, e.ExpectedSeq, e.ActualSeq)
}

// Is makes errors.Is(err, ErrConflict) true for every *ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
