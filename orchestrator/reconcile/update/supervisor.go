package update

// This file owns the Supervisor: which updater runs for which service and
// spec_version, replacing one when the spec moves on, remembering finished
// updates so the reconcilers' repeated calls stay no-ops, and starting one
// again for a finished spec_version when a node it left out (one taking
// no new tasks) takes them again. The update itself is updater.go's.

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// pruneEvery is how many remembered services trigger a sweep of those
// that no longer exist.
const pruneEvery = 256

// Supervisor runs at most one updater per service. It implements
// reconcile.Updater.
type Supervisor struct {
	store *store.MemoryStore
	log   *slog.Logger
	clock clock

	mu      sync.Mutex
	runs    map[string]*run
	pruneAt int
	pruning bool
	// started counts updaters started, for tests.
	started int
	// active counts running goroutines; idle is closed when it drops to
	// zero (a WaitGroup would forbid Update racing with Wait).
	active int
	idle   chan struct{}
}

var _ reconcile.Updater = (*Supervisor)(nil)

// run is one updater, or the memory of a finished one.
type run struct {
	version uint64
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	// finished is set once the updater reached a final state for version
	// (completed, paused, rolled back, nothing to do): calls for that
	// version stay no-ops, unless they hand a slot of one of the deferred
	// nodes and that node now takes new tasks.
	finished bool
	// deferred is the nodes whose out-of-date task the finished updater
	// left because they took no new tasks.
	deferred map[string]bool
	// recall repeats the last call for version that came while the
	// updater still ran: it may hand a deferred node that has become
	// active meanwhile, and no later call may come to say so.
	recall func()
}

// stopping reports whether r's updater is on its way out without having
// finished (its leader's ctx ended): a call from the next leader's
// reconcilers must not be taken for a repeat.
func (r *run) stopping() bool {
	return !r.finished && r.ctx.Err() != nil
}

// clock is time as the updaters see it; tests record the waits.
type clock struct {
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

// NewSupervisor returns a Supervisor writing through s.
func NewSupervisor(s *store.MemoryStore, log *slog.Logger) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{
		store:   s,
		log:     log,
		clock:   clock{now: time.Now, after: time.After},
		runs:    make(map[string]*run),
		pruneAt: pruneEvery,
	}
}

// Update makes sure an updater rolls slots onto service's current spec,
// and ends the update in progress, if any, once they are rolled: slots may
// be empty. It returns at once; the updater runs in a goroutine until it
// finishes, the spec moves on, or ctx ends. A call for the spec_version an
// updater already ran or runs does nothing, as does one older than that,
// except that a finished one is run again for slots it deferred whose node
// now takes new tasks.
func (s *Supervisor) Update(ctx context.Context, service *api.Service, slots []reconcile.Slot) {
	if service == nil || ctx.Err() != nil {
		return
	}
	id, version := service.Id, service.SpecVersion
	keys := slotKeys(slots)

	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.runs[id]
	if prev != nil && prev.version >= version && !prev.stopping() && !s.undefers(prev, version, keys) {
		if !prev.finished && prev.version == version {
			prev.recall = func() { s.Update(ctx, service, slots) }
		}
		return
	}
	if prev != nil {
		prev.cancel()
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &run{version: version, ctx: rctx, cancel: cancel, done: make(chan struct{})}
	s.runs[id] = r
	s.started++
	s.goLocked(func() {
		defer close(r.done)
		defer cancel()
		if prev != nil {
			<-prev.done // one updater per service at any time
		}
		u := newUpdater(s.store, s.log, s.clock, id, version, keys)
		finished := u.run(rctx)
		s.finish(id, r, finished, u.deferred)
	})
	s.maybePrune()
}

// undefers reports whether keys name a slot the finished updater prev of
// version deferred whose node now takes new tasks. s.mu is held.
func (s *Supervisor) undefers(prev *run, version uint64, keys []slotKey) bool {
	if !prev.finished || prev.version != version || len(prev.deferred) == 0 {
		return false
	}
	var nodes []string
	for _, k := range keys {
		if prev.deferred[k.node] {
			nodes = append(nodes, k.node)
		}
	}
	if len(nodes) == 0 {
		return false
	}
	ready := false
	s.store.View(func(tx store.ReadTx) {
		ready = slices.ContainsFunc(nodes, func(id string) bool { return reconcile.NodeTakesNewTasks(tx.Node(id)) })
	})
	return ready
}

// Wait blocks until no updater runs. Cancel the ctx given to Update first,
// or it waits for the updates to finish.
func (s *Supervisor) Wait() {
	for {
		s.mu.Lock()
		if s.active == 0 {
			s.mu.Unlock()
			return
		}
		idle := s.idle
		s.mu.Unlock()
		<-idle
	}
}

// goLocked runs fn in a goroutine Wait waits for. s.mu is held.
func (s *Supervisor) goLocked(fn func()) {
	if s.active == 0 {
		s.idle = make(chan struct{})
	}
	s.active++
	go func() {
		defer func() {
			s.mu.Lock()
			s.active--
			if s.active == 0 {
				close(s.idle)
			}
			s.mu.Unlock()
		}()
		fn()
	}()
}

// finish records how r ended: a finished update is remembered with the
// slots it deferred, anything else is forgotten so the next call starts
// over.
func (s *Supervisor) finish(id string, r *run, finished bool, deferred []slotKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs[id] != r {
		return
	}
	if !finished {
		delete(s.runs, id)
		return
	}
	r.finished = true
	for _, k := range deferred {
		if r.deferred == nil {
			r.deferred = make(map[string]bool)
		}
		r.deferred[k.node] = true
	}
	if recall := r.recall; recall != nil && len(r.deferred) > 0 {
		r.recall = nil
		s.goLocked(recall)
	}
}

// maybePrune forgets, in the background, finished updates of services
// that are gone, once enough are remembered. s.mu is held.
func (s *Supervisor) maybePrune() {
	if len(s.runs) < s.pruneAt || s.pruning {
		return
	}
	s.pruning = true
	s.goLocked(func() {
		var gone []string
		s.mu.Lock()
		ids := make([]string, 0, len(s.runs))
		for id := range s.runs {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		s.store.View(func(tx store.ReadTx) {
			for _, id := range ids {
				if tx.Service(id) == nil {
					gone = append(gone, id)
				}
			}
		})
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, id := range gone {
			if r := s.runs[id]; r != nil && r.finished {
				delete(s.runs, id)
			}
		}
		s.pruneAt = max(pruneEvery, 2*len(s.runs))
		s.pruning = false
	})
}

// slotKeys names the slots handed to Update, in rolling order.
func slotKeys(slots []reconcile.Slot) []slotKey {
	seen := make(map[slotKey]bool, len(slots))
	keys := make([]slotKey, 0, len(slots))
	for _, sl := range slots {
		if len(sl) == 0 || sl[0] == nil {
			continue
		}
		k := keyOf(sl[0])
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}
