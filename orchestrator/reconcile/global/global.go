// Package global keeps one task of every global service on every eligible
// node.
//
// A node is eligible for a service when it may keep tasks (it exists, is
// not DOWN, not drained) and passes the service's placement constraints and
// platforms. An eligible node with no task of the service gets one, created
// with its node_id set and PENDING (the scheduler admits it), but only if
// the node takes new tasks: READY or UNKNOWN (every node is UNKNOWN right
// after a leader change) and ACTIVE. A paused node keeps its task but gets
// no new one, not even a restart. A node that stops being eligible (down,
// drained, removed, a label change that breaks a constraint) loses its
// task: desired SHUTDOWN, never replaced elsewhere.
//
// For each service, a pass (one store transaction) does, per node:
//
//  1. Shut down the tasks of a node that is no longer eligible.
//  2. Hand tasks meant to run that ended to the restart Supervisor (a
//     replacement on the same node, or desired COMPLETE when the policy
//     says no restart; either keeps the node's place).
//  3. Shut down all but one task of each spec_version if a node has
//     several (tasks of different spec_versions are a start-first update
//     under way: the Updater's).
//  4. Create a task where an eligible node has none and no delayed restart
//     is held for it.
//  5. Hand nodes whose task has another spec_version than the service to
//     the Updater, which replaces them; the reconciler never does.
//
// A deleted service's tasks all get desired REMOVE; the task reaper
// deletes them once they stop.
//
// Store events only mark services dirty (a relevant node change marks
// every global service); dirty services are reconciled once per committed
// batch, and every service again on a periodic tick. Run reads the whole
// state when it starts, so a new leader resumes where the old one stopped.
//
// It imports api, orchestrator/store, orchestrator/reconcile,
// orchestrator/reconcile/restart and orchestrator/scheduler (for placement
// constraints).
package global

// This file owns the Reconciler's life: Run's loop, and which store events
// make a service dirty. services.go reconciles one service, placement.go
// says which nodes a service fits.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/restart"
	"github.com/shoal/shoal/orchestrator/store"
)

// DefaultTick is how often every global service is reconciled even when
// nothing changed.
const DefaultTick = 5 * time.Second

// maxCoalescedBatches bounds how many batches one reconcile waits behind.
const maxCoalescedBatches = 256

// Reconciler keeps one task of each global service per eligible node.
type Reconciler struct {
	store   *store.MemoryStore
	restart *restart.Supervisor
	updater reconcile.Updater
	log     *slog.Logger
	tick    time.Duration

	// afterReconcile, when set (tests), is called after each round of
	// reconciling dirty services.
	afterReconcile func()
}

// New returns a Reconciler writing to s. r restarts tasks; u replaces
// out-of-date ones (nil: none are replaced).
func New(s *store.MemoryStore, r *restart.Supervisor, u reconcile.Updater, log *slog.Logger) *Reconciler {
	return &Reconciler{store: s, restart: r, updater: u, log: log, tick: DefaultTick}
}

// Run reconciles until ctx ends, then returns nil. Call it on the leader
// only.
func (r *Reconciler) Run(ctx context.Context) error {
	if err := r.store.ViewLinearizable(ctx, func(store.ReadTx) {}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("global: catch up with the log: %w", err)
	}
	dirty := make(map[string]struct{})
	watch := r.store.ViewAndWatch(ctx, func(tx store.ReadTx) { markAll(tx, dirty, true) })
	ticker := time.NewTicker(r.tick)
	defer ticker.Stop()
	for {
		r.reconcileDirty(ctx, dirty)
		select {
		case <-ctx.Done():
			return nil
		case b, ok := <-watch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				watch = r.store.ViewAndWatch(ctx, func(tx store.ReadTx) { markAll(tx, dirty, true) })
				continue
			}
			r.note(append([]store.Batch{b}, queued(watch)...), dirty)
		case <-ticker.C:
			r.store.View(func(tx store.ReadTx) { markAll(tx, dirty, false) })
		}
	}
}

// queued returns the batches already waiting on watch.
func queued(watch <-chan store.Batch) []store.Batch {
	var out []store.Batch
	for len(out) < maxCoalescedBatches {
		select {
		case b, ok := <-watch:
			if !ok {
				return out
			}
			out = append(out, b)
		default:
			return out
		}
	}
	return out
}

// markAll marks every global service dirty and, with orphans, every
// service ID that global tasks still name though the service is gone.
func markAll(tx store.ReadTx, dirty map[string]struct{}, orphans bool) {
	for _, s := range tx.Services() {
		if reconcile.IsGlobal(s) {
			dirty[s.Id] = struct{}{}
		}
	}
	if !orphans {
		return
	}
	exists := make(map[string]bool)
	for _, t := range tx.Tasks() {
		if t.Slot == 0 && t.DesiredState < api.TaskState_TASK_STATE_REMOVE && !serviceExists(tx, t.ServiceId, exists) {
			dirty[t.ServiceId] = struct{}{}
		}
	}
}

// note marks dirty the services the batches concern.
func (r *Reconciler) note(batches []store.Batch, dirty map[string]struct{}) {
	nodesChanged := false
	for _, b := range batches {
		if b.Restored {
			r.store.View(func(tx store.ReadTx) { markAll(tx, dirty, true) })
			continue
		}
		for _, ev := range b.Events {
			switch ev.Kind {
			case store.KindService:
				s, _ := ev.Object.(*api.Service)
				old, _ := ev.Old.(*api.Service)
				if reconcile.IsGlobal(s) || reconcile.IsGlobal(old) {
					dirty[s.GetId()] = struct{}{}
				}
			case store.KindTask:
				if t, _ := ev.Object.(*api.Task); t.GetSlot() == 0 && taskMatters(ev) {
					dirty[t.ServiceId] = struct{}{}
				}
			case store.KindNode:
				nodesChanged = nodesChanged || nodeMatters(ev)
			}
		}
	}
	if nodesChanged {
		r.store.View(func(tx store.ReadTx) { markAll(tx, dirty, false) })
	}
}

// taskMatters reports whether a task event can change what its service's
// pass does: a task taking or leaving a node's place, a new desired state,
// or a task meant to run that just ended.
func taskMatters(ev store.Event) bool {
	t, _ := ev.Object.(*api.Task)
	old, _ := ev.Old.(*api.Task)
	if ev.Action != api.StoreAction_KIND_UPDATE || old == nil {
		return reconcile.OccupiesSlot(t)
	}
	ended := reconcile.IsTerminal(t.GetStatus().GetState()) && !reconcile.IsTerminal(old.GetStatus().GetState())
	return old.DesiredState != t.DesiredState || old.NodeId != t.NodeId || (ended && reconcile.MeantToRun(t))
}

// nodeMatters reports whether a node event can change which nodes are
// eligible: a node added or removed, or a change of its spec (availability,
// labels), description (platform, engine labels), role or state.
func nodeMatters(ev store.Event) bool {
	n, _ := ev.Object.(*api.Node)
	old, _ := ev.Old.(*api.Node)
	if ev.Action != api.StoreAction_KIND_UPDATE || old == nil {
		return true
	}
	return old.GetStatus().GetState() != n.GetStatus().GetState() || old.GetRole() != n.GetRole() ||
		!proto.Equal(old.GetSpec(), n.GetSpec()) || !proto.Equal(old.GetDescription(), n.GetDescription())
}

// reconcileDirty reconciles the dirty services and forgets them; one that
// fails waits for its next event or the tick.
func (r *Reconciler) reconcileDirty(ctx context.Context, dirty map[string]struct{}) {
	if len(dirty) == 0 {
		return
	}
	ids := make([]string, 0, len(dirty))
	for id := range dirty {
		ids = append(ids, id)
	}
	clear(dirty)
	slices.Sort(ids)
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		if err := r.reconcileService(ctx, id); err != nil && ctx.Err() == nil {
			r.log.Error("service not reconciled", "service", id, "err", err)
		}
	}
	if r.afterReconcile != nil {
		r.afterReconcile()
	}
}

// serviceExists reports whether service id exists, remembering answers in
// seen: reading a service copies it.
func serviceExists(tx store.ReadTx, id string, seen map[string]bool) bool {
	ok, known := seen[id]
	if !known {
		ok = tx.Service(id) != nil
		seen[id] = ok
	}
	return ok
}
