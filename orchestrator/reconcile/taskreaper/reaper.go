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
// are batched, at most reconcile.MaxWritesPerUpdate per transaction.
//
// Store events only mark services dirty; dirty services are reaped once
// per committed batch, and every service again on a periodic tick. Run
// reads the whole state when it starts.
//
// It imports api, orchestrator/store, orchestrator/reconcile and
// orchestrator/reconcile/restart.
package taskreaper

// This file owns the Reaper: Run, which drives it with a reconcile.Loop,
// which events make a service dirty, and the deletion rules of one service.

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

// Reaper deletes finished tasks.
type Reaper struct {
	store *store.MemoryStore
	log   *slog.Logger
	// loop drives the Reaper; tests may set its AfterRound.
	loop reconcile.Loop
}

// New returns a Reaper deleting from s.
func New(s *store.MemoryStore, log *slog.Logger) *Reaper {
	r := &Reaper{store: s, log: log}
	r.loop = reconcile.Loop{Name: "taskreaper", Store: s, Log: log, Tick: DefaultTick,
		MarkAll: markAll, Note: r.note, Reconcile: r.reapService}
	return r
}

// Run reaps until ctx ends, then returns nil. Call it on the leader only.
func (r *Reaper) Run(ctx context.Context) error { return r.loop.Run(ctx) }

// markAll marks every service dirty and, when full, every service ID that
// tasks still name though the service is gone (walking every task, so only
// when Run starts or the store was restored; later deletes of services
// arrive as events).
func markAll(tx store.ReadTx, dirty reconcile.Dirty, full bool) {
	for _, s := range tx.Services() {
		dirty.Mark(s.Id)
	}
	if !full {
		return
	}
	for _, t := range tx.SharedTasks() {
		if _, ok := dirty[t.ServiceId]; !ok && tx.Service(t.ServiceId) == nil {
			dirty.Mark(t.ServiceId)
		}
	}
}

// note marks dirty the services the batches concern: a task that stopped
// holding its slot or changed while not holding it, a deleted service, the
// services of a node that went down or away, everything when the cluster's
// history limit may have changed.
func (r *Reaper) note(batches []store.Batch, dirty reconcile.Dirty) {
	var lostNodes []string
	all := false
	for _, b := range batches {
		for _, ev := range b.Events {
			switch ev.Kind {
			case store.KindTask:
				if t, _ := ev.Object.(*api.Task); ev.Action != api.StoreAction_KIND_DELETE && !reconcile.OccupiesSlot(t) {
					dirty.Mark(t.ServiceId)
				}
			case store.KindService:
				if ev.Action == api.StoreAction_KIND_DELETE {
					dirty.Mark(ev.Object.GetId())
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
			markAll(tx, dirty, false)
			return
		}
		for _, id := range lostNodes {
			for _, t := range tx.TasksByNode(id) {
				if !reconcile.OccupiesSlot(t) {
					dirty.Mark(t.ServiceId)
				}
			}
		}
	})
}

// reapService deletes what the rules allow of one service's tasks, in
// transactions of at most reconcile.MaxWritesPerUpdate deletes.
func (r *Reaper) reapService(ctx context.Context, id string) error {
	deleted := 0
	err := reconcile.UpdateInChunks(ctx, r.store, func(tx store.Tx, b *reconcile.Budget) error {
		deleted = 0
		doomed := reapable(tx, id)
		if len(doomed) > 0 {
			b.FitTasks(doomed[0].GetSpec()) // a delete carries the whole task
		}
		for _, t := range doomed {
			if !b.Spend(1) {
				return nil
			}
			if err := tx.Delete(t); err != nil {
				return fmt.Errorf("delete task %s: %w", t.Id, err)
			}
			deleted++
		}
		return nil
	}, func() {
		if deleted > 0 {
			r.log.Debug("tasks reaped", "service", id, "count", deleted)
		}
	})
	if err != nil {
		return fmt.Errorf("reap tasks of service %s: %w", id, err)
	}
	return nil
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
	for _, t := range tx.SharedTasksByService(id) {
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
