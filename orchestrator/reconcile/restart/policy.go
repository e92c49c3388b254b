package restart

// This file owns the restart policy as pure rules over tasks: whether a
// task's end calls for a restart, how long to wait, and how many attempts a
// slot has used. The Supervisor (supervisor.go) applies them in
// transactions.

import (
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
)

// DefaultDelay is the wait before a restart when the policy sets none.
const DefaultDelay = 5 * time.Second

// Delay is how long after a task's end its replacement starts.
func Delay(p *api.RestartPolicy) time.Duration {
	if p.GetDelay() == nil {
		return DefaultDelay
	}
	return max(p.GetDelay().AsDuration(), 0)
}

// conditionAllows reports whether the policy's condition restarts a task
// that ended in state.
func conditionAllows(p *api.RestartPolicy, state api.TaskState) bool {
	switch p.GetCondition() {
	case api.RestartPolicy_CONDITION_NONE:
		return false
	case api.RestartPolicy_CONDITION_ON_FAILURE:
		return state != api.TaskState_TASK_STATE_COMPLETE
	default:
		return true
	}
}

// IsAttempt reports whether t, a task that no longer runs, counts as one
// restart attempt of its slot: it ended on its own (COMPLETE, FAILED or
// REJECTED) rather than being stopped by a manager (SHUTDOWN, or still
// not terminal because its node went away).
func IsAttempt(t *api.Task) bool {
	switch t.GetStatus().GetState() {
	case api.TaskState_TASK_STATE_COMPLETE, api.TaskState_TASK_STATE_FAILED, api.TaskState_TASK_STATE_REJECTED:
		return true
	}
	return false
}

// attemptsLeft reports whether the policy allows one more restart of t,
// given the other tasks of its slot. Attempts are the slot's earlier tasks
// of t's spec_version that ended on their own within the window; a new
// spec starts with a fresh count.
func attemptsLeft(p *api.RestartPolicy, slot reconcile.Slot, t *api.Task, now time.Time) bool {
	limit := p.GetMaxAttempts()
	if limit == 0 {
		return true
	}
	var since time.Time
	if w := p.GetWindow().AsDuration(); w > 0 {
		since = now.Add(-w)
	}
	var used uint64
	for _, o := range slot {
		if o.Id == t.Id || o.SpecVersion != t.SpecVersion || reconcile.MeantToRun(o) || !IsAttempt(o) {
			continue
		}
		if !since.IsZero() && endTime(o).Before(since) {
			continue
		}
		used++
	}
	return used < limit
}

// endTime is when a finished task last changed state.
func endTime(t *api.Task) time.Time {
	if ts := t.GetStatus().GetTimestamp(); ts != nil {
		return ts.AsTime()
	}
	return t.GetMeta().GetUpdatedAt().AsTime()
}

// HistoryToKeep is how many finished tasks per slot the task reaper must
// keep for service so attempts can still be counted: max_attempts when the
// policy bounds them, else 0.
func HistoryToKeep(service *api.Service) int {
	return int(min(service.GetSpec().GetTask().GetRestart().GetMaxAttempts(), 1<<20))
}
