package store

// This file owns MemoryStore: the tables, the read paths and the raft state
// machine side (Apply). Staging writes lives in tx.go, the checks Apply
// runs across objects in check.go, watching in watch.go, snapshots in
// snapshot.go.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
)

// Proposer is the raft side the store writes through.
type Proposer interface {
	// Propose commits payload through raft and returns what Apply returned
	// for it on this manager.
	Propose(ctx context.Context, payload []byte) (any, error)
	// ReadBarrier returns once this manager has applied everything committed
	// before the call.
	ReadBarrier(ctx context.Context) error
}

// maxUpdateAttempts bounds how often Update re-runs a callback whose
// transaction lost a version race.
const maxUpdateAttempts = 16

// MemoryStore holds the replicated objects in memory.
type MemoryStore struct {
	mu       sync.RWMutex
	tables   map[Kind]map[string]Object
	index    indexes
	applied  uint64
	watchers map[*watcher]struct{}
	checks   []Check

	proposerMu sync.RWMutex
	proposer   Proposer

	now func() time.Time
}

// New returns an empty store that enforces checks on every transaction it
// applies. They are fixed for the store's life: a check added after raft
// replayed the log would leave this manager's state unlike the others'.
func New(checks ...Check) *MemoryStore {
	s := &MemoryStore{
		tables:   make(map[Kind]map[string]Object, len(kinds)),
		index:    make(indexes),
		watchers: make(map[*watcher]struct{}),
		checks:   slices.Clone(checks),
		now:      time.Now,
	}
	for _, k := range kinds {
		s.tables[k] = make(map[string]Object)
	}
	return s
}

// SetProposer connects the store to raft.
func (s *MemoryStore) SetProposer(p Proposer) {
	s.proposerMu.Lock()
	s.proposer = p
	s.proposerMu.Unlock()
}

func (s *MemoryStore) getProposer() (Proposer, error) {
	s.proposerMu.RLock()
	defer s.proposerMu.RUnlock()
	if s.proposer == nil {
		return nil, ErrNoProposer
	}
	return s.proposer, nil
}

// AppliedIndex is the raft index of the last transaction applied.
func (s *MemoryStore) AppliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// View runs fn against the local state. It may lag the leader; use
// ViewLinearizable when the read must reflect every acknowledged write.
func (s *MemoryStore) View(fn func(ReadTx)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(&readTx{s: s})
}

// ViewLinearizable waits for a raft read barrier, then runs fn.
func (s *MemoryStore) ViewLinearizable(ctx context.Context, fn func(ReadTx)) error {
	p, err := s.getProposer()
	if err != nil {
		return err
	}
	if err := p.ReadBarrier(ctx); err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	s.View(fn)
	return nil
}

// Update runs fn in a transaction and commits what it staged through raft.
// If another transaction changed an object fn read, fn runs again on the new
// state. A callback that stages nothing commits nothing.
func (s *MemoryStore) Update(ctx context.Context, fn func(Tx) error) error {
	p, err := s.getProposer()
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		tx := newTx(s, s.now())
		s.mu.RLock()
		err := fn(tx)
		s.mu.RUnlock()
		if err != nil {
			return err
		}
		payload, err := tx.payload()
		if err != nil {
			return err
		}
		if payload == nil {
			return nil
		}
		res, err := p.Propose(ctx, payload)
		if err != nil {
			return fmt.Errorf("commit transaction: %w", err)
		}
		applyErr, _ := res.(error)
		if applyErr == nil {
			return nil
		}
		if !errors.Is(applyErr, ErrVersionConflict) || attempt == maxUpdateAttempts {
			return applyErr
		}
		// Our read was stale: wait a moment (jittered, growing, so writers
		// contending for one object do not keep colliding), catch up with
		// what the leader has, and run the callback again.
		select {
		case <-ctx.Done():
			return fmt.Errorf("commit transaction: %w", ctx.Err())
		case <-time.After(rand.N(time.Duration(attempt) * time.Millisecond)):
		}
		if err := p.ReadBarrier(ctx); err != nil {
			return fmt.Errorf("commit transaction: %w", err)
		}
	}
}

// Apply applies one committed transaction. It returns nil or the error that
// made the whole transaction fail; either way the index counts as applied.
func (s *MemoryStore) Apply(index uint64, payload []byte) any {
	var txn api.StoreTransaction
	if err := proto.Unmarshal(payload, &txn); err != nil {
		s.mu.Lock()
		s.applied = index
		s.mu.Unlock()
		return fmt.Errorf("decode transaction at index %d: %w", index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = index
	if err := s.check(txn.Actions); err != nil {
		return err
	}
	if err := s.runChecks(txn.ChecksVersion, txn.Actions); err != nil {
		return err
	}
	events := make([]Event, 0, len(txn.Actions))
	for _, a := range txn.Actions {
		events = append(events, s.applyAction(index, a))
	}
	s.publish(Batch{Index: index, Events: events})
	return nil
}

// check validates every action of a transaction against the current state
// before any is applied, so a transaction applies whole or not at all.
func (s *MemoryStore) check(actions []*api.StoreAction) error {
	for _, a := range actions {
		o, err := actionObject(a)
		if err != nil {
			return err
		}
		kind, err := kindOf(o)
		if err != nil {
			return err
		}
		if o.GetId() == "" {
			return fmt.Errorf("%w: %s without an ID", ErrInvalidObject, kind)
		}
		cur, exists := s.tables[kind][o.GetId()]
		switch a.Kind {
		case api.StoreAction_KIND_CREATE:
			if exists {
				return fmt.Errorf("%w: %s %s", ErrExist, kind, o.GetId())
			}
		case api.StoreAction_KIND_UPDATE, api.StoreAction_KIND_DELETE:
			if !exists {
				if a.ExpectedVersion != 0 {
					// Read at a version, deleted since: the read was
					// stale, as with any other change, and Update
					// runs its callback again on the new state.
					return fmt.Errorf("%w: %s %s was deleted after it was read at version %d (%w)",
						ErrVersionConflict, kind, o.GetId(), a.ExpectedVersion, ErrNotFound)
				}
				return fmt.Errorf("%w: %s %s", ErrNotFound, kind, o.GetId())
			}
			if version(cur) != a.ExpectedVersion {
				return fmt.Errorf("%w: %s %s is at version %d, the change was made against %d",
					ErrVersionConflict, kind, o.GetId(), version(cur), a.ExpectedVersion)
			}
		default:
			return fmt.Errorf("%w: unknown action %v", ErrInvalidObject, a.Kind)
		}
	}
	return nil
}

func (s *MemoryStore) applyAction(index uint64, a *api.StoreAction) Event {
	o, _ := actionObject(a) // check() has vetted it
	kind, _ := kindOf(o)
	table := s.tables[kind]
	old := table[o.GetId()]
	ev := Event{Action: a.Kind, Kind: kind, Old: old}
	if old != nil {
		s.index.remove(old)
	}
	if a.Kind == api.StoreAction_KIND_DELETE {
		delete(table, o.GetId())
		ev.Object = old
		return ev
	}
	meta := o.GetMeta()
	if meta == nil {
		// Every object generated by protoc has a Meta field; set it
		// through reflection-free accessors of the known kinds.
		meta = &api.Meta{}
		setMeta(o, meta)
	}
	meta.Version = index
	if old != nil {
		meta.CreatedAt = old.GetMeta().GetCreatedAt()
	} else if meta.CreatedAt == nil {
		meta.CreatedAt = meta.UpdatedAt
	}
	table[o.GetId()] = o
	s.index.add(o)
	ev.Object = o
	return ev
}

func setMeta(o Object, m *api.Meta) {
	switch t := o.(type) {
	case *api.Node:
		t.Meta = m
	case *api.Cluster:
		t.Meta = m
	case *api.Service:
		t.Meta = m
	case *api.Task:
		t.Meta = m
	case *api.Network:
		t.Meta = m
	case *api.IPBinding:
		t.Meta = m
	}
}

func stamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
