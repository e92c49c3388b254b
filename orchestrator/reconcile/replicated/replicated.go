// Package replicated keeps every replicated service at its replica count:
// slots 1..replicas each hold one task meant to run.
//
// For each service, a pass (one store transaction, several for huge
// changes) does, in order:
//
//  1. Tasks meant to run that ended, or whose node is down, drained or gone,
//     go to the restart Supervisor (old task desired SHUTDOWN, replacement
//     in the same slot with no node, or desired COMPLETE when the policy
//     says no restart). No replacement is made while another task still
//     holds the slot, e.g. the old task of a start-first update whose new
//     task failed.
//  2. A slot is occupied while one of its tasks is meant to run or was
//     completed for good (desired COMPLETE), or while the Supervisor holds
//     it for a delayed restart. Too many occupied slots: the highest are
//     removed, all their tasks desired REMOVE. Too few: the lowest free
//     slot numbers get new tasks, PENDING with no node for the scheduler.
//  3. A kept slot holding several tasks of one spec_version (an old
//     leader's race) keeps the one furthest along, RUNNING before earlier
//     states, then the newest; the others get desired SHUTDOWN
//     (reconcile.Holders). Tasks of different spec_versions side by side
//     are a start-first update under way: the Updater's.
//  4. Occupied slots whose task has another spec_version than the service
//     go to the Updater, which replaces them; the reconciler never does.
//     While update_status says an update is in progress, the Updater is
//     called even with no such slot, so that it can end the update.
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

// This file owns the Reconciler's life: Run, which drives it with a
// reconcile.Loop, and which node events make a service dirty. services.go
// reconciles one service.

import (
	"context"
	"log/slog"
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

// Reconciler keeps replicated services at their replica count.
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
	rec.loop = reconcile.Loop{Name: "replicated", Store: s, Log: log, Tick: DefaultTick,
		MarkAll: reconcile.Replicated.MarkAll, Note: rec.note, Reconcile: rec.reconcileService}
	return rec
}

// Run reconciles until ctx ends, then returns nil. Call it on the leader
// only.
func (r *Reconciler) Run(ctx context.Context) error { return r.loop.Run(ctx) }

// note marks dirty the services the batches concern: through their own
// events and their tasks' (reconcile.Replicated.Note), and those with a
// task meant to run on a node that can no longer keep it.
func (r *Reconciler) note(batches []store.Batch, dirty reconcile.Dirty) {
	var lostNodes []string
	for _, b := range batches {
		for _, ev := range b.Events {
			if ev.Kind == store.KindNode {
				if nodeLost(ev) {
					lostNodes = append(lostNodes, ev.Object.GetId())
				}
				continue
			}
			reconcile.Replicated.Note(ev, dirty)
		}
	}
	if len(lostNodes) == 0 {
		return
	}
	r.store.View(func(tx store.ReadTx) {
		for _, id := range lostNodes {
			for _, t := range tx.TasksByNode(id) {
				if t.Slot != 0 && reconcile.MeantToRun(t) {
					dirty.Mark(t.ServiceId)
				}
			}
		}
	})
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
