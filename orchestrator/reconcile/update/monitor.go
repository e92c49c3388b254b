package update

// This file owns watching the new tasks: when each one runs (which settles
// its slot's step, and for start-first retires the old task), whether it
// failed before running or within monitor after, and the failure action
// once failures pass max_failure_ratio.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// tracked is a new task being watched: until it runs, then for monitor.
type tracked struct {
	step *step
	// runningAt is when the updater saw it RUNNING; zero before.
	runningAt time.Time
}

// observations is what one batch showed about the tracked tasks.
type observations struct {
	// ran is the start-first steps whose new task runs: their old tasks
	// are to be retired.
	ran []*step
	// failed is the new tasks that failed, in the order seen; retract
	// those of them that were start-first.
	failed  []string
	retract []string
}

// observe follows a tracked task's new state.
func (u *updater) observe(t *api.Task, o *observations) {
	tr := u.tracked[t.Id]
	if tr == nil {
		return
	}
	state := t.GetStatus().GetState()
	switch {
	case !reconcile.MeantToRun(t):
		// A manager stopped it (drain, scale down, node down): not the
		// update's failure; whoever stopped it replaces it.
		u.settle(tr)
		delete(u.tracked, t.Id)
	case tr.runningAt.IsZero() && state == api.TaskState_TASK_STATE_RUNNING:
		tr.runningAt = u.clock.now()
		if st := tr.step; st != nil && !st.settled && st.startFirst {
			o.ran = append(o.ran, st)
		}
		u.settle(tr)
	case reconcile.IsTerminal(state):
		if tr.runningAt.IsZero() || u.clock.now().Sub(tr.runningAt) <= u.cfg.monitor {
			o.failed = append(o.failed, t.Id)
			if st := tr.step; st != nil && !st.settled && st.startFirst {
				o.retract = append(o.retract, t.Id)
			}
		}
		u.settle(tr)
		delete(u.tracked, t.Id)
	}
}

// observeGone follows the deletion of a task.
func (u *updater) observeGone(id string) {
	if tr := u.tracked[id]; tr != nil {
		u.settle(tr)
		delete(u.tracked, id)
	}
}

func (u *updater) settle(tr *tracked) {
	if tr.step != nil {
		tr.step.settled = true
	}
}

// pruneTracked stops watching tasks that ran past monitor.
func (u *updater) pruneTracked() {
	now := u.clock.now()
	for id, tr := range u.tracked {
		if !tr.runningAt.IsZero() && now.Sub(tr.runningAt) > u.cfg.monitor {
			delete(u.tracked, id)
		}
	}
}

// monitorLeft is how long until every tracked task that runs has run for
// monitor.
func (u *updater) monitorLeft() time.Duration {
	var last time.Time
	for _, tr := range u.tracked {
		if tr.runningAt.After(last) {
			last = tr.runningAt
		}
	}
	if last.IsZero() {
		return 0
	}
	return max(last.Add(u.cfg.monitor).Sub(u.clock.now()), 0)
}

// act applies what a batch showed: retires old tasks next to new ones that
// run, retracts failed start-first tasks, counts failures and applies the
// failure action. It reports true when the update stopped on it.
func (u *updater) act(ctx context.Context, o *observations) (bool, error) {
	if len(o.ran) > 0 || len(o.retract) > 0 {
		if err := u.retire(ctx, o.ran, o.retract); err != nil {
			return false, fmt.Errorf("retire old tasks: %w", err)
		}
	}
	for _, id := range o.failed {
		u.failures++
		u.log.Warn("new task failed", "task", id, "failures", u.failures, "slots", u.total)
		if u.cfg.failureAction == api.UpdateConfig_FAILURE_ACTION_CONTINUE ||
			float64(u.failures)/float64(u.total) <= float64(u.cfg.maxFailureRatio) {
			continue
		}
		return true, u.failureAction(ctx, id)
	}
	return false, nil
}

// failureAction stops the update because task taskID failed: it pauses it,
// or rolls it back (a rollback is never rolled back, it pauses). New
// start-first tasks not running yet get desired SHUTDOWN first, so each of
// their slots keeps just its old task.
func (u *updater) failureAction(ctx context.Context, taskID string) error {
	var pending []string
	for _, st := range u.steps {
		if !st.settled && st.startFirst {
			pending = append(pending, st.taskID)
		}
	}
	if err := u.retire(ctx, nil, pending); err != nil {
		return fmt.Errorf("withdraw new tasks: %w", err)
	}
	var status *api.UpdateStatus
	err := u.update(ctx, func(tx store.Tx, svc *api.Service) error {
		rolledBack := u.cfg.failureAction == api.UpdateConfig_FAILURE_ACTION_ROLLBACK &&
			!isRollingBack(svc) && markRolledBack(svc, taskID, u.clock.now())
		if !rolledBack {
			markPaused(svc, taskID)
		}
		status = svc.UpdateStatus
		return tx.Update(svc)
	})
	if errors.Is(err, store.ErrRefused) && status.GetState() == api.UpdateStatus_STATE_ROLLBACK_STARTED {
		// The store refused the previous spec (another service took a
		// port it publishes meanwhile): pause, and say why.
		refused := err
		err = u.update(ctx, func(tx store.Tx, svc *api.Service) error {
			markPaused(svc, taskID)
			svc.UpdateStatus.Message += fmt.Sprintf("; the rollback was refused: %v", refused)
			status = svc.UpdateStatus
			return tx.Update(svc)
		})
	}
	if err != nil {
		return fmt.Errorf("apply failure action: %w", err)
	}
	u.log.Warn("update stopped on failures", "state", status.GetState(), "message", status.GetMessage(),
		"failures", u.failures, "slots", u.total)
	return nil
}
