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
)
