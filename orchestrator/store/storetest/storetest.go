// Package storetest gives tests of the store's users a MemoryStore that
// commits without raft: every proposal is applied at once, in order, with
// increasing indexes, as a single manager's raft would.
package storetest

import (
	"context"
	"sync"

	"github.com/shoal/shoal/orchestrator/store"
)

// Proposer applies each proposal to its store straight away.
type Proposer struct {
	mu    sync.Mutex
	index uint64
	store *store.MemoryStore
}

// New returns an empty store that commits through a Proposer.
func New() *store.MemoryStore {
	s, _ := NewWithProposer()
	return s
}

// NewWithProposer returns an empty store and the Proposer it commits
// through, for tests that count transactions.
func NewWithProposer() (*store.MemoryStore, *Proposer) {
	s := store.New()
	p := &Proposer{store: s}
	s.SetProposer(p)
	return s, p
}

// Proposals returns how many proposals p has applied: every transaction
// the store committed or refused (a version conflict) so far.
func (p *Proposer) Proposals() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.index
}

// Propose applies payload at the next index and returns Apply's result.
func (p *Proposer) Propose(ctx context.Context, payload []byte) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	return p.store.Apply(p.index, payload), nil
}

// ReadBarrier returns at once: everything proposed is already applied.
func (p *Proposer) ReadBarrier(context.Context) error { return nil }
