package global

// This file owns one service's pass over every node: shutting down tasks of
// nodes that stopped being eligible, restarts, one task per eligible node,
// and handing out-of-date nodes to the Updater. A pass is one transaction
// of at most reconcile.MaxWritesPerUpdate task writes; a bigger change
// takes a few passes in a row.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/restart"
	"github.com/shoal/shoal/orchestrator/store"
)

// reconcileService gives one service its task on every eligible node, in
// as many transactions as the change needs, then hands its out-of-date
// nodes to the Updater, and calls it with none while an update is in
// progress.
func (r *Reconciler) reconcileService(ctx context.Context, id string) error {
	var p *pass
	err := reconcile.UpdateInChunks(ctx, r.store, func(tx store.Tx, b *reconcile.Budget) error {
		p = &pass{tx: tx, restart: r.restart, budget: b, now: time.Now()}
		return p.reconcile(id)
	}, func() {
		if p.badPlacement != nil {
			r.log.Warn("service placement unreadable; its nodes keep their tasks but get no new ones",
				"service", id, "err", p.badPlacement)
		}
		r.restart.Schedule(p.later...)
		r.restart.Cancel(p.cancel...)
	})
	if err != nil {
		return fmt.Errorf("reconcile service %s: %w", id, err)
	}
	reconcile.HandToUpdater(ctx, r.updater, p.service, p.dirty)
	return nil
}

// pass is one transaction's work on one service.
type pass struct {
	tx      store.Tx
	restart *restart.Supervisor
	now     time.Time
	budget  *reconcile.Budget

	// Results, acted on once the transaction commits.
	service      *api.Service
	badPlacement error
	later        []*restart.Delayed
	cancel       []restart.Key
	dirty        []reconcile.Slot
}

func (p *pass) reconcile(id string) error {
	svc := p.tx.Service(id)
	tasks := p.tx.TasksByService(id)
	if svc == nil {
		return p.budget.RemoveAll(p.tx, tasks)
	}
	if !reconcile.IsGlobal(svc) {
		return nil
	}
	p.service = svc
	p.budget.FitTasks(svc.GetSpec().GetTask())
	pl, err := parsePlacement(svc.GetSpec().GetTask().GetPlacement())
	if err != nil {
		p.badPlacement = err
	}
	byNode := make(map[string]reconcile.Slot)
	for _, t := range tasks {
		if t.Slot != 0 { // left from another mode
			if err := p.budget.SetDesired(p.tx, api.TaskState_TASK_STATE_REMOVE, t); err != nil {
				return err
			}
			continue
		}
		byNode[t.NodeId] = append(byNode[t.NodeId], t)
	}
	for _, n := range p.tx.Nodes() {
		slot := byNode[n.Id]
		delete(byNode, n.Id)
		if p.budget.Exhausted() {
			return nil
		}
		// An unreadable placement keeps what runs and starts nothing.
		keeps := reconcile.NodeKeepsTasks(n) && (p.badPlacement != nil || pl.fits(n))
		takesNew := p.badPlacement == nil && keeps && reconcile.NodeTakesNewTasks(n)
		if err := p.reconcileNode(svc, n.Id, slot, keeps, takesNew); err != nil {
			return err
		}
	}
	// What is left ran on nodes that no longer exist.
	gone := make([]string, 0, len(byNode))
	for nodeID := range byNode {
		gone = append(gone, nodeID)
	}
	slices.Sort(gone)
	for _, nodeID := range gone {
		if err := p.reconcileNode(svc, nodeID, byNode[nodeID], false, false); err != nil {
			return err
		}
	}
	return nil
}

// reconcileNode brings the tasks slot of svc on one node to what the node
// deserves: none meant to run unless it keeps tasks, and one (created if
// it takes new tasks) if it does.
func (p *pass) reconcileNode(svc *api.Service, nodeID string, slot reconcile.Slot, keeps, takesNew bool) error {
	key := restart.Key{ServiceID: svc.Id, NodeID: nodeID}
	if !keeps {
		p.cancel = append(p.cancel, key)
		return p.budget.SetDesired(p.tx, api.TaskState_TASK_STATE_SHUTDOWN, runnable(slot)...)
	}
	held := p.restart.Held(key)
	for _, t := range slices.Clone(slot) {
		if !reconcile.MeantToRun(t) || !reconcile.IsTerminal(t.GetStatus().GetState()) {
			continue
		}
		if !p.budget.Spend(2) {
			return nil
		}
		repl, later, err := p.restart.Restart(p.tx, svc, slot, t, restart.Ended)
		if err != nil {
			return err
		}
		if repl != nil {
			slot = append(slot, repl)
		}
		if later != nil {
			p.later = append(p.later, later)
			held = true
		}
	}
	holders, extra := reconcile.Holders(slot)
	if err := p.budget.SetDesired(p.tx, api.TaskState_TASK_STATE_SHUTDOWN, extra...); err != nil {
		return err
	}
	switch {
	case len(holders) > 0:
		if slices.ContainsFunc(holders, func(t *api.Task) bool { return reconcile.IsTaskDirty(svc, t) }) {
			p.dirty = append(p.dirty, slot)
		}
	case !held && takesNew:
		if !p.budget.Spend(1) {
			return nil
		}
		if err := p.tx.Create(reconcile.NewTask(svc, 0, nodeID, p.now)); err != nil {
			return fmt.Errorf("create task for node %s: %w", nodeID, err)
		}
	}
	return nil
}

// runnable returns slot's tasks meant to run.
func runnable(slot reconcile.Slot) []*api.Task {
	var out []*api.Task
	for _, t := range slot {
		if reconcile.MeantToRun(t) {
			out = append(out, t)
		}
	}
	return out
}
