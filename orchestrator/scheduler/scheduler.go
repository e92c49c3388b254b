package scheduler

// This file owns the scheduler's lifecycle: loading the view from the store,
// following store events, and deciding when to run a pass. Events only
// update the view and mark work; a pass runs once per drained burst of
// batches and on a periodic tick. Writing a pass's decisions is commit.go.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// DefaultTick is how often pending tasks are retried with no event, as a
// safety net behind the events that free room or make nodes ready.
const DefaultTick = time.Second

// Scheduler places pending tasks; see the package documentation.
type Scheduler struct {
	store *store.MemoryStore
	log   *slog.Logger
	tick  time.Duration
	now   func() time.Time

	// beforeCommit, when set, runs between planning a pass and writing it
	// (tests use it to change the store under a pass).
	beforeCommit func()

	view *view // owned by Run's goroutine
}

// New returns a scheduler for s; it does nothing until Run.
func New(s *store.MemoryStore, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{store: s, log: log, tick: DefaultTick, now: time.Now}
}

// Run schedules until ctx ends, then returns nil. Call it on the leader
// only, and from one goroutine at a time. It fails only when it cannot
// catch up with the log first.
func (s *Scheduler) Run(ctx context.Context) error {
	// A new leader may not have applied everything its predecessor
	// committed (tasks it placed or saw start): placing against that
	// stale view would overcommit nodes. Wait until the local store has
	// every entry committed before this point.
	if err := s.store.ViewLinearizable(ctx, func(store.ReadTx) {}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("scheduler: catch up with the log: %w", err)
	}
	ticker := time.NewTicker(s.tick)
	defer ticker.Stop()
	for ctx.Err() == nil {
		s.follow(ctx, ticker.C)
	}
	return nil
}

// follow loads the view and follows one watch of the store. It returns
// when ctx ends, or when the view must be loaded again: the watch closed
// (it fell too far behind) or a raft snapshot replaced the state.
func (s *Scheduler) follow(ctx context.Context, tick <-chan time.Time) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := s.store.ViewAndWatch(wctx, s.load)
	s.log.Debug("scheduler view loaded", "nodes", len(s.view.nodes), "pending", len(s.view.pending))
	// dirty says a pass may place something. A pass that could not write
	// all it decided leaves it set, so the next wake-up (the events of
	// whatever changed under it, or the tick) runs another.
	dirty := true
	for {
		if dirty && len(s.view.pending) > 0 {
			dirty = s.pass(ctx)
		} else {
			dirty = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
			dirty = true
		case b, ok := <-watch:
			more, reload := s.drain(b, ok, watch)
			if reload {
				return
			}
			dirty = dirty || more
		}
	}
}

// drain applies b and every batch already waiting behind it, so a burst
// of commits costs one pass. It reports whether a pass may place a task,
// and whether the view must be loaded again instead.
func (s *Scheduler) drain(b store.Batch, ok bool, watch <-chan store.Batch) (dirty, reload bool) {
	for {
		if !ok {
			s.log.Info("scheduler watch closed; reloading the store")
			return false, true
		}
		if b.Restored {
			s.log.Info("store restored from a snapshot; reloading", "index", b.Index)
			return false, true
		}
		dirty = s.apply(b) || dirty
		select {
		case b, ok = <-watch:
		default:
			return dirty, false
		}
	}
}

// load builds the view from the whole state.
func (s *Scheduler) load(tx store.ReadTx) {
	s.view = newView()
	for _, n := range tx.Nodes() {
		s.view.setNode(n)
	}
	for _, t := range tx.SharedTasks() {
		s.view.setTask(t)
	}
}

// apply brings the view up to date with one batch and reports whether it
// may let a pending task be placed.
func (s *Scheduler) apply(b store.Batch) bool {
	dirty := false
	for _, ev := range b.Events {
		switch o := ev.Object.(type) {
		case *api.Node:
			if ev.Action == api.StoreAction_KIND_DELETE {
				s.view.removeNode(o.Id)
			} else {
				s.view.setNode(o)
			}
			dirty = true
		case *api.Task:
			if ev.Action == api.StoreAction_KIND_DELETE {
				dirty = s.view.removeTask(o.Id) || dirty
			} else {
				dirty = s.view.setTask(o) || dirty
			}
		}
	}
	return dirty
}

// pass plans every pending task and commits the decisions. It reports
// whether some decision was not written (a task changed meanwhile, or the
// write failed), so another pass is due.
func (s *Scheduler) pass(ctx context.Context) (retry bool) {
	start := time.Now()
	pending := s.view.pendingTasks()
	res := s.view.plan(pending)
	planned := time.Since(start)
	if s.beforeCommit != nil {
		s.beforeCommit()
	}
	written, retry := s.commit(ctx, pending, res)
	s.log.Debug("scheduling pass", "pending", len(pending), "assigned", len(res.Assigned),
		"unplaced", len(res.Unplaced), "written", written, "retry", retry,
		"plan", planned, "took", time.Since(start))
	return retry
}
