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
//     several, keeping the one furthest along (reconcile.Holders; tasks of
//     different spec_versions are a start-first update under way: the
//     Updater's).
//  4. Create a task where an eligible node has none and no delayed restart
//     is held for it.
//  5. Hand nodes whose task has another spec_version than the service to
//     the Updater, which replaces them; the reconciler never does. While
//     update_status says an update is in progress, call the Updater even
//     with no such node, so that it can end the update. (The Updater
//     leaves the task of a node that takes no new tasks, e.g. a paused
//     one, until the node does.)
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

// This file owns the Reconciler's life: Run, which drives it with a
// reconcile.Loop, and which node events make a service dirty. services.go
// reconciles one service, placement.go says which nodes a service fits.

import (
	"context"
	"log/slog"
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

// Reconciler keeps one task of each global service per eligible node.
type Reconciler struct {
	store   *store.MemoryStore
	restart *restart.Supervisor
	updater reconcile.Updater
	log     *slog.Logger
	// loop drives the Reconciler; tests may set its AfterRound.
	loop reconcile.Loop
}

// New returns a Reconciler writing to s. r restarts tasks; u replaces
// out-of-date ones (nil: none are replaced).
func New(s *store.MemoryStore, r *restart.Supervisor, u reconcile.Updater, log *slog.Logger) *Reconciler {
	rec := &Reconciler{store: s, restart: r, updater: u, log: log}
	rec.loop = reconcile.Loop{Name: "global", Store: s, Log: log, Tick: DefaultTick,
		MarkAll: reconcile.Global.MarkAll, Note: rec.note, Reconcile: rec.reconcileService}
	return rec
}

// Run reconciles until ctx ends, then returns nil. Call it on the leader
// only.
func (r *Reconciler) Run(ctx context.Context) error { return r.loop.Run(ctx) }

// note marks dirty the services the batches concern: through their own
// events and their tasks' (reconcile.Global.Note), and every global service
// when a node change may have changed which nodes are eligible.
func (r *Reconciler) note(batches []store.Batch, dirty reconcile.Dirty) {
	nodesChanged := false
	for _, b := range batches {
		for _, ev := range b.Events {
			if ev.Kind == store.KindNode {
				nodesChanged = nodesChanged || nodeMatters(ev)
				continue
			}
			reconcile.Global.Note(ev, dirty)
		}
	}
	if nodesChanged {
		r.store.View(func(tx store.ReadTx) { reconcile.Global.MarkAll(tx, dirty, false) })
	}
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
