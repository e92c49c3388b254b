package store

// This file owns the store's error values; callers test them with
// errors.Is.

import "errors"

var (
	// ErrNotFound is returned when an object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrExist is returned when creating an object whose ID is taken.
	ErrExist = errors.New("object already exists")
	// ErrVersionConflict is returned when an object changed between the read
	// and the commit of a transaction.
	ErrVersionConflict = errors.New("object version conflict")
	// ErrNoProposer is returned by writes before the store is wired to raft.
	ErrNoProposer = errors.New("store is not connected to raft")
	// ErrInvalidObject is returned for objects the store cannot hold (no ID).
	ErrInvalidObject = errors.New("invalid object")
	// ErrRefused marks a transaction one of the store's checks refused
	// (New's checks): the error says why, and errors.Is(err, ErrRefused)
	// tells it from a lost proposal or a version conflict.
	ErrRefused = errors.New("refused by a store check")
)

// refusedError carries a check's own error unchanged (message and
// errors.As targets) and answers errors.Is(err, ErrRefused).
type refusedError struct{ err error }

func (e refusedError) Error() string        { return e.err.Error() }
func (e refusedError) Unwrap() error        { return e.err }
func (e refusedError) Is(target error) bool { return target == ErrRefused }
