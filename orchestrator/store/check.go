package store

// This file owns the checks the store runs as it applies a transaction:
// invariants across objects (a service name held once, say) that version
// checks cannot keep, because two transactions made on the same state
// write different objects and so never conflict. A check runs inside
// Apply, so every manager judges each entry, replayed ones included, on
// the same state and refuses the same ones.

import (
	"fmt"
	"time"

	"github.com/shoal/shoal/api"
)

// ChecksVersion is the version of the rules the store's checks enforce; it
// is written into every transaction (checks_version).
const ChecksVersion = 1

// A Check is an invariant the store enforces on every transaction it
// applies to objects of one kind; CheckOf makes one.
type Check struct {
	kind     Kind
	onDelete bool // runs for deletes (DeleteCheckOf) instead of writes
	run      func(after ReadTx, old, obj Object) error
}

// CheckOf returns the Check that calls fn for each object of type T a
// transaction creates or updates, with after, the state as the whole
// transaction would leave it, old, the object as stored before (nil for a
// create), and obj, the object written. fn returns nil, or the error that
// refuses the whole transaction; Apply returns that error to the writer
// as it is.
//
// fn must decide from its arguments alone, so that every manager decides
// alike, and must not change old or obj, which are the store's own. It
// runs under the store's write lock, so it must be quick. CheckOf panics
// when the store holds no T.
func CheckOf[T Object](fn func(after ReadTx, old, obj T) error) Check {
	var zero T
	kind, err := kindOf(zero)
	if err != nil {
		panic(fmt.Sprintf("store.CheckOf: %v", err))
	}
	return Check{kind: kind, run: func(after ReadTx, old, obj Object) error {
		prev, _ := old.(T) // the zero T for a create
		return fn(after, prev, obj.(T))
	}}
}

// DeleteCheckOf returns the Check that calls fn for each object of type T
// a transaction deletes, with after, the state as the whole transaction
// would leave it, and old, the object as stored before. The rules of
// CheckOf apply; it keeps invariants a delete can break, such as an object
// others still refer to.
func DeleteCheckOf[T Object](fn func(after ReadTx, old T) error) Check {
	c := CheckOf(func(after ReadTx, old, _ T) error { return fn(after, old) })
	c.onDelete = true
	return c
}

// runChecks runs the store's checks on a transaction whose actions
// check() has vetted; s.mu is held. The state after the transaction is
// staged only when some check judges one of its objects, so transactions
// of other kinds (the scheduler's thousands of tasks) cost no more.
//
// written is the checks_version the entry was written under: an entry from
// before the checks existed (0) is applied unchecked, as it was when it was
// first applied, so a manager replaying an old log ends where the others
// did. A rule change must bump ChecksVersion and keep the old rules for
// entries written under them.
func (s *MemoryStore) runChecks(written uint32, actions []*api.StoreAction) error {
	if written == 0 {
		return nil
	}
	var after *tx
	for _, a := range actions {
		deleting := a.Kind == api.StoreAction_KIND_DELETE
		o, _ := actionObject(a)
		k, _ := kindOf(o)
		for _, c := range s.checks {
			if c.kind != k || c.onDelete != deleting {
				continue
			}
			if after == nil {
				after = s.stagedState(actions)
			}
			old := s.tables[k][o.GetId()] // nil for a create
			if err := c.run(after, old, o); err != nil {
				return refusedError{err}
			}
		}
	}
	return nil
}

// stagedState is the state as actions would leave it, read through a
// transaction that stages them.
func (s *MemoryStore) stagedState(actions []*api.StoreAction) *tx {
	t := newTx(s, time.Time{})
	for _, a := range actions {
		o, _ := actionObject(a)
		k, _ := kindOf(o)
		t.stage(k, o.GetId(), &staged{action: a.Kind, object: o})
	}
	return t
}
