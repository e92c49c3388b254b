// Package replicated keeps every replicated service at its replica count:
// slots 1..replicas each hold one task meant to run.
//
// For each service, a pass (one store transaction, several for huge
// changes) does, in order:
//
//  1. Tasks meant to run that ended, or whose node is down, drained or gone,
//     go to the restart Supervisor (old task desired SHUTDOWN, replacement
//     in the same slot with no node, or desired COMPLETE when the policy
//     says no restart).
//  2. A slot is occupied while one of its tasks is meant to run or was
//     completed for good (desired COMPLETE), or while the Supervisor holds
//     it for a delayed restart. Too many occupied slots: the highest are
//     removed, all their tasks desired REMOVE. Too few: the lowest free
//     slot numbers get new tasks, PENDING with no node for the scheduler.
//  3. Occupied slots whose task has another spec_version than the service
//     go to the Updater, which replaces them; the reconciler never does.
//
// A deleted service's tasks all get desired REMOVE; the task reaper
// deletes them once they stop.
//
// Store events only mark services dirty; dirty services are reconciled
// once per committed batch (bursts of batches coalesce), and every service
// again on a periodic tick. Run reads the whole state when it starts, so a
// new leader resumes where the old one stopped.
//
// It imports api, orchestrator/store, orchestrator/reconcile and
// orchestrator/reconcile/restart.
package replicated

// This file owns the Reconciler's life: Run's loop, and which store events
// make a service dirty. services.go reconciles one service.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/restart"
	"github.com/shoal/shoal/orchestrator/store"
)

// DefaultTick is how often every replicated service is reconciled even
// when nothing changed: it catches what no event announces (a hold that
// expired, a failed commit).
const DefaultTick = 5 * time.Second

// maxCoalescedBatches bounds how many batches one reconcile waits behind.
const maxCoalescedBatches = 256

// Reconciler keeps replicated services at their replica count.
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
		return fmt.Errorf("replicated: catch up with the log: %w", err)
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
				// Fallen behind: read everything again.
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
				return out // Run sees the closed channel next
			}
			out = append(out, b)
		default:
			return out
		}
	}
	return out
}

// markAll marks every replicated service dirty and, with orphans, every
// service ID that replicated tasks still name though the service is gone.
func markAll(tx store.ReadTx, dirty map[string]struct{}, orphans bool) {
	for _, s := range tx.Services() {
		if reconcile.IsReplicated(s) {
			dirty[s.Id] = struct{}{}
		}
	}
	if !orphans {
		return
	}
	exists := make(map[string]bool)
	for _, t := range tx.Tasks() {
		if t.Slot != 0 && t.DesiredState < api.TaskState_TASK_STATE_REMOVE && !serviceExists(tx, t.ServiceId, exists) {
			dirty[t.ServiceId] = struct{}{}
		}
	}
}

// note marks dirty the services the batches concern.
func (r *Reconciler) note(batches []store.Batch, dirty map[string]struct{}) {
	var lostNodes []string
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
				if reconcile.IsReplicated(s) || reconcile.IsReplicated(old) {
					dirty[s.GetId()] = struct{}{}
				}
			case store.KindTask:
				if t, _ := ev.Object.(*api.Task); t.GetSlot() != 0 && taskMatters(ev) {
					dirty[t.ServiceId] = struct{}{}
				}
			case store.KindNode:
				if nodeLost(ev) {
					lostNodes = append(lostNodes, ev.Object.GetId())
				}
			}
		}
	}
	if len(lostNodes) == 0 {
		return
	}
	r.store.View(func(tx store.ReadTx) {
		for _, id := range lostNodes {
			for _, t := range tx.TasksByNode(id) {
				if t.Slot != 0 && reconcile.MeantToRun(t) {
					dirty[t.ServiceId] = struct{}{}
				}
			}
		}
	})
}

// taskMatters reports whether a task event can change what its service's
// pass does: a task taking or leaving a slot, a new desired state or node,
// or a task meant to run that just ended. Progress reports on the way to
// RUNNING do not.
func taskMatters(ev store.Event) bool {
	t, _ := ev.Object.(*api.Task)
	old, _ := ev.Old.(*api.Task)
	if ev.Action != api.StoreAction_KIND_UPDATE || old == nil {
		return reconcile.OccupiesSlot(t)
	}
	ended := reconcile.IsTerminal(t.GetStatus().GetState()) && !reconcile.IsTerminal(old.GetStatus().GetState())
	return old.DesiredState != t.DesiredState || old.NodeId != t.NodeId || (ended && reconcile.MeantToRun(t))
}

// nodeLost reports whether a node event took away the node's right to keep
// its tasks.
func nodeLost(ev store.Event) bool {
	n, _ := ev.Object.(*api.Node)
	if ev.Action == api.StoreAction_KIND_DELETE {
		return true
	}
	old, _ := ev.Old.(*api.Node)
	return !reconcile.NodeKeepsTasks(n) && (old == nil || reconcile.NodeKeepsTasks(old))
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
