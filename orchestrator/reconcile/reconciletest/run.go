package reconciletest

// This file owns running components for a test: Start, Rounds to wait for
// a reconciler to catch up, and an Updater that records what the slot
// owners hand it.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// Start runs every component (a Run method, by name) until the test ends
// or stop is called; a component that returns an error fails the test.
// stop cancels them and waits for them to return; it may be called again.
func Start(t testing.TB, components map[string]func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for name, run := range components {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop)
	return stop
}

// Rounds lets a test wait for a reconciler's rounds: give the reconciler
// Done as its after-round hook (reconcile.Loop.AfterRound).
type Rounds struct {
	ch chan struct{}
}

// NewRounds returns a Rounds no round has signalled yet.
func NewRounds() *Rounds { return &Rounds{ch: make(chan struct{}, 1)} }

// Done signals that a round ended. It never blocks.
func (r *Rounds) Done() {
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

// Settle returns once the reconciler has seen everything committed before
// the call: it commits poke, a change the reconciler must reconcile (a new
// service of its mode that needs no task), and waits for the round that
// follows; twice, as the first round may have been under way already.
func (r *Rounds) Settle(t testing.TB, s *store.MemoryStore, poke func(store.Tx) error) {
	t.Helper()
	for range 2 {
		select {
		case <-r.ch:
		default:
		}
		Update(t, s, poke)
		select {
		case <-r.ch:
		case <-time.After(guard):
			t.Fatal("no reconcile round")
		}
	}
}

// Updater is a reconcile.Updater that records what it is handed.
type Updater struct {
	mu    sync.Mutex
	calls []UpdateCall
}

// UpdateCall is one call of Update.
type UpdateCall struct {
	Service *api.Service
	Slots   []reconcile.Slot
}

// Update records the call.
func (u *Updater) Update(_ context.Context, s *api.Service, slots []reconcile.Slot) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, UpdateCall{s, slots})
}

// Last returns the latest call; ok is false when there was none.
func (u *Updater) Last() (c UpdateCall, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.calls) == 0 {
		return UpdateCall{}, false
	}
	return u.calls[len(u.calls)-1], true
}
