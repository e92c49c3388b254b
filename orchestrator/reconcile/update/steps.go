package update

// This file owns the store writes that roll slots: bringing tasks that are
// out of date only by number up to date in place, starting a group (new
// tasks, and for stop-first the old ones' shutdown, in one transaction),
// retiring old tasks once a start-first task runs, and the last sweep.
// Every write re-reads the tasks it changes inside its transaction: the
// view only says which tasks to look at. A step writes every old task
// holding its slot, unchanged for start-first, so that it conflicts with a
// restart of one of them that read the slot before it committed: one of
// the two runs again and sees the other's new task.

import (
	"context"
	"fmt"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// step is the rolling of one slot.
type step struct {
	key slotKey
	// taskID is the slot's new task: created by the step, or a task of the
	// current spec found there.
	taskID string
	// retire is the slot's other tasks, shut down at the start of a
	// stop-first step and once taskID runs for a start-first one.
	retire     []string
	startFirst bool
	settled    bool
}

// adopt brings the tasks of the candidate slots that differ from the
// current spec only by number to the current spec_version, in place.
func (u *updater) adopt(ctx context.Context, svc *api.Service) error {
	var ids []string
	for _, k := range u.candidates {
		for _, t := range u.view.slot(k) {
			if adoptable(svc, t) {
				ids = append(ids, t.Id)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	err := u.updateEach(ctx, len(ids), func(tx store.Tx, svc *api.Service, i int) error {
		t := tx.Task(ids[i])
		if t == nil || !adoptable(svc, t) {
			return nil
		}
		t.SpecVersion = svc.SpecVersion
		return tx.Update(t)
	})
	if err != nil {
		return fmt.Errorf("bring tasks to spec version %d in place: %w", u.version, err)
	}
	u.log.Info("tasks brought up to date in place", "tasks", len(ids))
	return nil
}

// startGroup takes the next group off the queue and starts rolling it.
func (u *updater) startGroup(ctx context.Context) error {
	u.pruneTracked()
	n := u.cfg.parallelism
	if n <= 0 || n > len(u.queue) {
		n = len(u.queue)
	}
	group := u.queue[:n]
	u.queue = u.queue[n:]
	u.steps = u.steps[:0]
	for lo := 0; lo < len(group); lo += maxPerTx {
		chunk := group[lo:min(lo+maxPerTx, len(group))]
		var made []*step
		var deferred []slotKey
		err := u.update(ctx, func(tx store.Tx, svc *api.Service) error {
			made, deferred = made[:0], deferred[:0]
			for _, k := range chunk {
				if k.node != "" && !reconcile.NodeTakesNewTasks(tx.Node(k.node)) {
					// Paused since the updater started, or on its way
					// out (the global reconciler then stops its task).
					deferred = append(deferred, k)
					continue
				}
				st, err := u.stepSlot(tx, svc, k)
				if err != nil {
					return fmt.Errorf("roll %s: %w", k, err)
				}
				if st != nil {
					made = append(made, st)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		u.deferred = append(u.deferred, deferred...)
		now := u.clock.now()
		for _, st := range made {
			u.steps = append(u.steps, st)
			tr := &tracked{step: st}
			if st.settled {
				tr.runningAt = now
			}
			u.tracked[st.taskID] = tr
		}
	}
	u.log.Debug("group started", "slots", len(group), "steps", len(u.steps), "left", len(u.queue))
	return nil
}

// stepSlot stages the start of slot k's roll: tasks out of date only by
// number are brought up to date, a new task is created unless one of the
// current spec is there, and for stop-first (or when that task already
// runs) the others get desired SHUTDOWN; for start-first they are staged
// unchanged, so that a restart of one of them committed meanwhile (which
// would have made a replacement beside the new task) fails this
// transaction's version check, and one made later sees the new task. It
// returns nil when the slot needs nothing. The caller checks that a global
// slot's node takes new tasks.
func (u *updater) stepSlot(tx store.Tx, svc *api.Service, k slotKey) (*step, error) {
	var tasks []*api.Task
	for _, id := range u.view.ids(k) {
		t := tx.Task(id)
		if t == nil {
			continue
		}
		if adoptable(svc, t) {
			t.SpecVersion = svc.SpecVersion
			if err := tx.Update(t); err != nil {
				return nil, err
			}
		}
		tasks = append(tasks, t)
	}
	p, ok := planSlot(svc, tasks)
	if !ok {
		return nil, nil
	}
	task := p.keep
	if task == nil {
		task = reconcile.NewTask(svc, k.slot, k.node, u.clock.now())
		if err := tx.Create(task); err != nil {
			return nil, err
		}
	}
	running := task.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING
	st := &step{key: k, taskID: task.Id, startFirst: u.cfg.startFirst && !running, settled: running}
	for _, t := range p.retire {
		st.retire = append(st.retire, t.Id)
		if !st.startFirst {
			t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		}
		if err := tx.Update(t); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// groupSettled reports whether every slot of the group in flight is done:
// its new task runs, failed, or was stopped by someone else.
func (u *updater) groupSettled() bool {
	for _, st := range u.steps {
		if !st.settled {
			return false
		}
	}
	return true
}

// retire shuts down, for each step, the other tasks of its slot, provided
// its new task is still meant to run, and gives the tasks in retract
// (start-first tasks that failed) desired SHUTDOWN so they are not
// restarted next to the old task that keeps the slot.
func (u *updater) retire(ctx context.Context, steps []*step, retract []string) error {
	type item struct {
		keep string // "" for a retraction
		id   string
	}
	var items []item
	for _, st := range steps {
		for _, id := range st.retire {
			items = append(items, item{st.taskID, id})
		}
	}
	for _, id := range retract {
		items = append(items, item{"", id})
	}
	return u.updateEach(ctx, len(items), func(tx store.Tx, svc *api.Service, i int) error {
		it := items[i]
		if it.keep != "" {
			if keep := tx.Task(it.keep); keep == nil || !reconcile.MeantToRun(keep) {
				return nil // the new task went away: the old one keeps the slot
			}
		}
		t := tx.Task(it.id)
		if t == nil || !reconcile.OccupiesSlot(t) {
			return nil
		}
		t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Update(t)
	})
}

// sweep retires the out-of-date tasks still meant to run in slots where a
// task of the current spec runs: what is left when a start-first task
// failed and a restart brought up its replacement next to the old task.
func (u *updater) sweep(ctx context.Context) error {
	type pair struct{ keep, old string }
	var pairs []pair
	for _, k := range u.candidates {
		var keep string
		var old []string
		for _, t := range u.view.slot(k) {
			switch {
			case !reconcile.MeantToRun(t):
			case t.SpecVersion != u.version:
				old = append(old, t.Id)
			case t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING:
				keep = t.Id
			}
		}
		for _, id := range old {
			if keep != "" {
				pairs = append(pairs, pair{keep, id})
			}
		}
	}
	err := u.updateEach(ctx, len(pairs), func(tx store.Tx, svc *api.Service, i int) error {
		keep, t := tx.Task(pairs[i].keep), tx.Task(pairs[i].old)
		if keep == nil || !reconcile.MeantToRun(keep) || keep.GetStatus().GetState() != api.TaskState_TASK_STATE_RUNNING ||
			t == nil || !reconcile.MeantToRun(t) || !reconcile.IsTaskDirty(svc, t) {
			return nil
		}
		t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Update(t)
	})
	if err != nil {
		return fmt.Errorf("retire old tasks left next to new ones: %w", err)
	}
	if len(pairs) > 0 {
		u.log.Info("retired old tasks left next to running new ones", "tasks", len(pairs))
	}
	return nil
}
