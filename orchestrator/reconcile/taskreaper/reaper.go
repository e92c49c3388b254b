// Package taskreaper deletes tasks nobody needs any more, so the store
// holds a bounded history per slot.
//
// It deletes, per service:
//
//   - a task desired REMOVE (scaled away, service deleted) once it is
//     observed terminal, or its node is DOWN or gone, or it was never
//     assigned (observed below ASSIGNED);
//   - a task of a deleted service once it is observed terminal;
//   - a global service's finished task whose node is gone;
//   - the oldest finished tasks of a slot (per node for a global service)
//     beyond the cluster's task_history_retention_limit, or beyond the
//     service's restart max_attempts when that is larger (restart attempts
//     are counted from this history). A finished task is one no longer
//     holding its slot (desired SHUTDOWN or later) that is observed
//     terminal, was never assigned, or whose node is gone; age is the time
//     of its last state change.
//
// It never deletes a task meant to run, one completed for good (desired
// COMPLETE: it holds its slot), or one still running on a live node. Deletes
// are batched, at most maxDeletesPerUpdate per transaction.
//
// Store events only mark services dirty; dirty services are reaped once
// per committed batch, and every service again on a periodic tick. Run
// reads the whole state when it starts.
//
// It imports api, orchestrator/store, orchestrator/reconcile and
// orchestrator/reconcile/restart.
package taskreaper

// This file owns the Reaper: Run's loop, which events make a service
// dirty, and the deletion rules of one service.

import (
	"cmp"
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

// DefaultTick is how often every service is reaped even when nothing
// changed.
const DefaultTick = 30 * time.Second

// maxDeletesPerUpdate bounds the deletes of one transaction.
const maxDeletesPerUpdate = 2000

// maxCoalescedBatches bounds how many batches one reaping waits behind.
const maxCoalescedBatches = 256

// Reaper deletes finished tasks.
type Reaper struct {
	store *store.MemoryStore
	log   *slog.Logger
	tick  time.Duration

	// afterReap, when set (tests), is called after each round of reaping
	// dirty services.
	afterReap func()
}

// New returns a Reaper deleting from s.
func New(s *store.MemoryStore, log *slog.Logger) *Reaper {
	return &Reaper{store: s, log: log, tick: DefaultTick}
}

// Run reaps until ctx ends, then returns nil. Call it on the leader only.
func (r *Reaper) Run(ctx context.Context) error {
	if err := r.store.ViewLinearizable(ctx, func(store.ReadTx) {}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("taskreaper: catch up with the log: %w", err)
	}
	dirty := make(map[string]struct{})
	watch := r.store.ViewAndWatch(ctx, func(tx store.ReadTx) { markAll(tx, dirty, true) })
	ticker := time.NewTicker(r.tick)
	defer ticker.Stop()
	for {
		r.reapDirty(ctx, dirty)
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

// markAll marks every service dirty and, with orphans, every service ID
// that tasks still name though the service is gone (walking every task, so
// only when Run starts or the store was restored; later deletes of services
// arrive as events).
func markAll(tx store.ReadTx, dirty map[string]struct{}, orphans bool) {
	for _, s := range tx.Services() {
		dirty[s.Id] = struct{}{}
	}
	if !orphans {
		return
	}
	for _, t := range tx.Tasks() {
		if _, ok := dirty[t.ServiceId]; !ok && tx.Service(t.ServiceId) == nil {
			dirty[t.ServiceId] = struct{}{}
		}
	}
}

// note marks dirty the services the batches concern: a task that stopped
// holding its slot or changed while not holding it, a deleted service, the
// services of a node that went down or away, everything when the cluster's
// history limit may have changed.
func (r *Reaper) note(batches []store.Batch, dirty map[string]struct{}) {
	var lostNodes []string
	all, restored := false, false
	for _, b := range batches {
		if b.Restored {
			all, restored = true, true
			continue
		}
		for _, ev := range b.Events {
			switch ev.Kind {
			case store.KindTask:
				if t, _ := ev.Object.(*api.Task); ev.Action != api.StoreAction_KIND_DELETE && !reconcile.OccupiesSlot(t) {
					dirty[t.ServiceId] = struct{}{}
				}
			case store.KindService:
				if ev.Action == api.StoreAction_KIND_DELETE {
					dirty[ev.Object.GetId()] = struct{}{}
				}
			case store.KindNode:
				n, _ := ev.Object.(*api.Node)
				if ev.Action == api.StoreAction_KIND_DELETE || n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN {
					lostNodes = append(lostNodes, n.GetId())
				}
			case store.KindCluster:
				all = true
			}
		}
	}
	if !all && len(lostNodes) == 0 {
		return
	}
	r.store.View(func(tx store.ReadTx) {
		if all {
			markAll(tx, dirty, restored)
			return
		}
		for _, id := range lostNodes {
			for _, t := range tx.TasksByNode(id) {
				if !reconcile.OccupiesSlot(t) {
					dirty[t.ServiceId] = struct{}{}
				}
			}
		}
	})
}

// reapDirty reaps the dirty services and forgets them; one that fails
// waits for its next event or the tick.
func (r *Reaper) reapDirty(ctx context.Context, dirty map[string]struct{}) {
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
		if err := r.reapService(ctx, id); err != nil && ctx.Err() == nil {
			r.log.Error("tasks not reaped", "service", id, "err", err)
		}
	}
	if r.afterReap != nil {
		r.afterReap()
	}
}

// reapService deletes what the rules allow of one service's tasks, in
// transactions of at most maxDeletesPerUpdate deletes.
func (r *Reaper) reapService(ctx context.Context, id string) error {
	for {
		deleted, more := 0, false
		err := r.store.Update(ctx, func(tx store.Tx) error {
			doomed := reapable(tx, id)
			deleted, more = 0, len(doomed) > maxDeletesPerUpdate
			for _, t := range doomed[:min(len(doomed), maxDeletesPerUpdate)] {
				if err := tx.Delete(t); err != nil {
					return fmt.Errorf("delete task %s: %w", t.Id, err)
				}
				deleted++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reap tasks of service %s: %w", id, err)
		}
		if deleted > 0 {
			r.log.Debug("tasks reaped", "service", id, "count", deleted)
		}
		if !more {
			return nil
		}
	}
}

// reapable lists the tasks of service id the rules delete.
func reapable(tx store.ReadTx, id string) []*api.Task {
	svc := tx.Service(id)
	keep := reconcile.TaskHistoryLimit(firstCluster(tx))
	if svc != nil {
		keep = max(keep, restart.HistoryToKeep(svc))
	}
	nodes := make(map[string]*api.Node)
	nodeOf := func(t *api.Task) *api.Node {
		n, ok := nodes[t.NodeId]
		if !ok && t.NodeId != "" {
			n = tx.Node(t.NodeId)
			nodes[t.NodeId] = n
		}
		return n
	}
	var doomed []*api.Task
	history := make(map[restart.Key][]*api.Task)
	for _, t := range tx.TasksByService(id) {
		if reconcile.OccupiesSlot(t) {
			continue
		}
		state := t.GetStatus().GetState()
		node := nodeOf(t)
		neverAssigned := state < api.TaskState_TASK_STATE_ASSIGNED
		nodeGone := t.NodeId != "" && node == nil
		nodeDown := node.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN
		switch {
		case t.DesiredState >= api.TaskState_TASK_STATE_REMOVE &&
			(reconcile.IsTerminal(state) || neverAssigned || nodeGone || nodeDown):
			doomed = append(doomed, t)
		case svc == nil && reconcile.IsTerminal(state):
			doomed = append(doomed, t)
		case t.Slot == 0 && nodeGone:
			// A global task's history is per node: a gone node's is moot.
			doomed = append(doomed, t)
		case reconcile.IsTerminal(state) || neverAssigned || nodeGone:
			k := restart.KeyOf(t)
			history[k] = append(history[k], t)
		}
	}
	for _, finished := range history {
		if len(finished) <= keep {
			continue
		}
		slices.SortFunc(finished, func(a, b *api.Task) int {
			return cmp.Or(endTime(a).Compare(endTime(b)), cmp.Compare(a.Id, b.Id))
		})
		doomed = append(doomed, finished[:len(finished)-keep]...)
	}
	return doomed
}

// endTime is when t last changed state.
func endTime(t *api.Task) time.Time {
	if ts := t.GetStatus().GetTimestamp(); ts != nil {
		return ts.AsTime()
	}
	return t.GetMeta().GetCreatedAt().AsTime()
}

func firstCluster(tx store.ReadTx) *api.Cluster {
	if cs := tx.Clusters(); len(cs) > 0 {
		return cs[0]
	}
	return nil
}
