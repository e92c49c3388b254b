package replicated

// This file owns one service's pass: restarts, scaling up and down,
// shutting down duplicates, and handing out-of-date slots to the Updater.
// A pass is one transaction of at most reconcile.MaxWritesPerUpdate task
// writes; a bigger change (10,000 new replicas) takes a few passes in a
// row.

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

// reconcileService brings one service to its replica count, in as many
// transactions as the change needs, then hands its out-of-date slots to
// the Updater, and calls it with none while an update is in progress.
func (r *Reconciler) reconcileService(ctx context.Context, id string) error {
	var p *pass
	err := reconcile.UpdateInChunks(ctx, r.store, func(tx store.Tx, b *reconcile.Budget) error {
		p = &pass{tx: tx, restart: r.restart, budget: b, now: time.Now()}
		return p.reconcile(id)
	}, func() {
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
	// budget counts the task writes this transaction may still stage;
	// once exhausted, the pass stops and another follows.
	budget *reconcile.Budget

	nodes map[string]*api.Node

	// Results, acted on once the transaction commits.
	service *api.Service
	later   []*restart.Delayed
	cancel  []restart.Key
	dirty   []reconcile.Slot
}

func (p *pass) reconcile(id string) error {
	svc := p.tx.Service(id)
	tasks := p.tx.TasksByService(id)
	if svc == nil {
		return p.budget.RemoveAll(p.tx, tasks)
	}
	if !reconcile.IsReplicated(svc) {
		return nil
	}
	p.service = svc
	p.budget.FitTasks(svc.GetSpec().GetTask())
	slots := make(map[uint64]reconcile.Slot)
	for _, t := range tasks {
		if t.Slot == 0 { // left from another mode
			if err := p.budget.SetDesired(p.tx, api.TaskState_TASK_STATE_REMOVE, t); err != nil {
				return err
			}
			continue
		}
		slots[t.Slot] = append(slots[t.Slot], t)
	}
	held := make(map[uint64]bool)
	if err := p.restartTasks(svc, slots, held); err != nil {
		return err
	}
	occupied := make([]uint64, 0, len(slots))
	for num, slot := range slots {
		if held[num] || occupies(slot) || p.restart.Held(restart.Key{ServiceID: id, Slot: num}) {
			occupied = append(occupied, num)
		}
	}
	slices.Sort(occupied)
	replicas := svc.GetSpec().GetReplicated().GetReplicas()
	// The service's slots are 1..replicas: every occupied slot above is removed (highest
	// first) and every free one up to it gets a task, whatever the counts. A low slot is
	// free while its task has stopped and no replacement exists yet — a delayed restart
	// whose hold left with a former leader, for one — and keeping the lowest occupied
	// slots instead would make which slots, and so which pinned addresses, a service keeps
	// depend on whether the leader had moved.
	keep := slices.DeleteFunc(slices.Clone(occupied), func(num uint64) bool { return num > replicas })
	var err error
	if excess := occupied[len(keep):]; len(excess) > 0 {
		err = p.scaleDown(slots, excess)
	}
	if err == nil && uint64(len(keep)) < replicas {
		err = p.scaleUp(svc, keep, replicas-uint64(len(keep)))
	}
	occupied = keep
	if err != nil {
		return err
	}
	for _, num := range occupied {
		_, extra := reconcile.Holders(slots[num])
		if err := p.budget.SetDesired(p.tx, api.TaskState_TASK_STATE_SHUTDOWN, extra...); err != nil {
			return err
		}
		if dirtySlot(svc, slots[num]) {
			p.dirty = append(p.dirty, slots[num])
		}
	}
	return nil
}

// restartTasks hands the Supervisor every task meant to run that ended or
// whose node cannot keep it. Slots and held follow what it staged.
func (p *pass) restartTasks(svc *api.Service, slots map[uint64]reconcile.Slot, held map[uint64]bool) error {
	nums := make([]uint64, 0, len(slots))
	for num := range slots {
		nums = append(nums, num)
	}
	slices.Sort(nums)
	for _, num := range nums {
		for _, t := range slices.Clone(slots[num]) {
			cause, ok := p.needsRestart(t)
			if !ok {
				continue
			}
			if !p.budget.Spend(2) {
				return nil
			}
			repl, later, err := p.restart.Restart(p.tx, svc, slots[num], t, cause)
			if err != nil {
				return err
			}
			if repl != nil {
				slots[num] = append(slots[num], repl)
			}
			if later != nil {
				p.later = append(p.later, later)
				held[num] = true
			}
		}
	}
	return nil
}

// needsRestart says whether t, if meant to run, must be restarted and why.
func (p *pass) needsRestart(t *api.Task) (restart.Cause, bool) {
	switch {
	case !reconcile.MeantToRun(t):
		return 0, false
	case reconcile.IsTerminal(t.GetStatus().GetState()):
		return restart.Ended, true
	case t.NodeId != "" && !reconcile.NodeKeepsTasks(p.node(t.NodeId)):
		return restart.NodeLost, true
	}
	return 0, false
}

func (p *pass) node(id string) *api.Node {
	if p.nodes == nil {
		p.nodes = make(map[string]*api.Node)
	}
	n, ok := p.nodes[id]
	if !ok {
		n = p.tx.Node(id)
		p.nodes[id] = n
	}
	return n
}

// scaleDown removes the slots excess, highest first: every task of them
// gets desired REMOVE and their holds are dropped.
func (p *pass) scaleDown(slots map[uint64]reconcile.Slot, excess []uint64) error {
	for i := len(excess) - 1; i >= 0; i-- {
		num := excess[i]
		if err := p.budget.SetDesired(p.tx, api.TaskState_TASK_STATE_REMOVE, slots[num]...); err != nil {
			return err
		}
		if p.budget.Exhausted() {
			return nil
		}
		p.cancel = append(p.cancel, restart.Key{ServiceID: p.service.Id, Slot: num})
	}
	return nil
}

// scaleUp creates tasks for the lowest free slot numbers, n of them.
func (p *pass) scaleUp(svc *api.Service, occupied []uint64, n uint64) error {
	taken := make(map[uint64]bool, len(occupied))
	for _, num := range occupied {
		taken[num] = true
	}
	for num := uint64(1); n > 0; num++ {
		if taken[num] {
			continue
		}
		if !p.budget.Spend(1) {
			return nil
		}
		if err := p.tx.Create(reconcile.NewTask(svc, num, "", p.now)); err != nil {
			return fmt.Errorf("create task for slot %d: %w", num, err)
		}
		n--
	}
	return nil
}

// occupies reports whether one of slot's tasks holds it.
func occupies(slot reconcile.Slot) bool {
	return slices.ContainsFunc(slot, reconcile.OccupiesSlot)
}

// dirtySlot reports whether slot's occupying task has another spec than
// svc's current one.
func dirtySlot(svc *api.Service, slot reconcile.Slot) bool {
	return slices.ContainsFunc(slot, func(t *api.Task) bool {
		return reconcile.OccupiesSlot(t) && reconcile.IsTaskDirty(svc, t)
	})
}
