package agent

// This file owns one task's state machine: it drives the task's executor
// controller through prepare, start and wait while the task is desired
// running, stops it when the cluster wants it stopped and removes it when
// the cluster forgets it, reporting each state reached, never one behind
// the last. One goroutine runs the machine while it has work; a task that
// waits for the cluster (finished, or stopped) has none.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/api"
)

type runner struct {
	id string
	w  *worker

	mu       sync.Mutex
	task     *api.Task     // the latest assignment
	observed api.TaskState // the furthest state stored or reported
	removed  bool          // the cluster forgot the task
	dirty    bool          // changed since the machine last looked
	active   bool          // a goroutine runs the machine
	cancelOp context.CancelFunc

	// Only the machine's goroutine touches these.
	ctl       exec.Controller
	stopped   bool // the workload was shut down as desired
	graceDone bool // the endpoint grace before shutdown has passed
}

func newRunner(w *worker, t *api.Task) *runner {
	return &runner{id: t.Id, w: w, task: t}
}

// update hands the runner a new assignment of its task. A change of the
// desired state interrupts what the machine waits on.
func (r *runner) update(t *api.Task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	interrupt := t.DesiredState != r.task.DesiredState
	r.task = t
	r.observed = max(r.observed, t.GetStatus().GetState())
	r.kick(interrupt)
}

// remove tells the runner to stop and remove the task, then forget it.
func (r *runner) remove() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = true
	r.kick(true)
}

// kick makes the machine look again, starting its goroutine if it has
// none; r.mu is held.
func (r *runner) kick(interrupt bool) {
	r.dirty = true
	if interrupt && r.cancelOp != nil {
		r.cancelOp()
	}
	if !r.active {
		r.active = true
		r.w.wg.Go(r.loop)
	}
}

func (r *runner) loop() {
	for {
		r.mu.Lock()
		if r.w.ctx.Err() != nil {
			r.active = false
			r.mu.Unlock()
			return
		}
		r.dirty = false
		t, observed, removed := r.task, r.observed, r.removed
		opCtx, cancel := context.WithCancel(r.w.ctx)
		r.cancelOp = cancel
		r.mu.Unlock()

		idle := true
		if removed {
			err := r.w.removeWorkload(t, r.ctl)
			if err != nil && r.w.ctx.Err() == nil {
				// What the workload still holds (a sandbox whose attachments a plugin would not
				// delete) is retried, not forgotten until the next resync.
				r.w.log.Warn("remove a task; trying again", "task", r.id, "err", err, "in", removeRetry)
				select {
				case <-r.w.ctx.Done():
				case <-time.After(removeRetry):
				}
				cancel()
				r.mu.Lock()
				r.cancelOp, r.dirty = nil, true
				r.mu.Unlock()
				continue
			}
		} else {
			idle = r.step(opCtx, t, observed)
		}
		cancel()

		r.mu.Lock()
		r.cancelOp = nil
		if removed && r.w.ctx.Err() == nil {
			r.active = false
			r.mu.Unlock()
			r.w.forget(r)
			return
		}
		if (idle && !r.dirty) || r.w.ctx.Err() != nil {
			r.active = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// step takes the task one step towards what its assignment asks and
// reports whether the machine must wait for a new assignment. An
// interrupted step (ctx ended) reports nothing and is not idle: the
// machine looks again.
func (r *runner) step(ctx context.Context, t *api.Task, observed api.TaskState) (idle bool) {
	if r.ctl == nil {
		ctl, err := r.w.executor.Controller(t)
		if err != nil {
			r.report(api.TaskState_TASK_STATE_REJECTED, "rejected", fmt.Errorf("no controller: %w", err), 0)
			return true
		}
		r.ctl = ctl
	}
	if t.DesiredState > api.TaskState_TASK_STATE_RUNNING {
		return r.stop(ctx, observed)
	}
	switch {
	case observed > api.TaskState_TASK_STATE_RUNNING:
		return true // finished: the managers decide what comes next
	case observed < api.TaskState_TASK_STATE_ACCEPTED:
		r.report(api.TaskState_TASK_STATE_ACCEPTED, "accepted", nil, 0)
	case observed == api.TaskState_TASK_STATE_ACCEPTED:
		r.report(api.TaskState_TASK_STATE_PREPARING, "preparing", nil, 0)
	case observed == api.TaskState_TASK_STATE_PREPARING:
		if err := r.ctl.Prepare(ctx); err != nil {
			if ctx.Err() != nil {
				return false
			}
			r.report(api.TaskState_TASK_STATE_REJECTED, "preparing failed", err, 0)
			return true
		}
		r.report(api.TaskState_TASK_STATE_STARTING, "starting", nil, 0)
	case observed == api.TaskState_TASK_STATE_STARTING:
		if err := r.ctl.Start(ctx); err != nil {
			if ctx.Err() != nil {
				return false
			}
			r.report(api.TaskState_TASK_STATE_FAILED, "starting failed", err, exitCode(err))
			return true
		}
		r.report(api.TaskState_TASK_STATE_RUNNING, "started", nil, 0)
	default: // RUNNING
		err := r.ctl.Wait(ctx)
		if ctx.Err() != nil {
			return false
		}
		switch {
		case err == nil:
			r.report(api.TaskState_TASK_STATE_COMPLETE, "finished", nil, 0)
		case errors.Is(err, exec.ErrNotFound):
			r.report(api.TaskState_TASK_STATE_FAILED, "lost", fmt.Errorf("the executor no longer has the task: %w", err), 0)
		default:
			r.report(api.TaskState_TASK_STATE_FAILED, "failed", err, exitCode(err))
		}
		return true
	}
	return false
}

// stop shuts the workload down once and reports SHUTDOWN unless the task
// had already finished.
func (r *runner) stop(ctx context.Context, observed api.TaskState) (idle bool) {
	if r.stopped {
		return true
	}
	if !r.endpointsDrained(ctx, observed) {
		return false
	}
	if err := r.ctl.Shutdown(ctx); err != nil {
		if ctx.Err() != nil {
			return false
		}
		r.w.log.Warn("shut a task down", "task", r.id, "err", err)
		r.report(api.TaskState_TASK_STATE_FAILED, "shutdown failed", err, 0)
		return true
	}
	r.stopped = true
	if observed <= api.TaskState_TASK_STATE_RUNNING {
		r.report(api.TaskState_TASK_STATE_SHUTDOWN, "shutdown", nil, 0)
	}
	return true
}

// endpointsDrained waits, once, the worker's endpoint grace before a task
// that was serving on networks is shut down, so that load balancers that
// were sending it connections have stopped; false if ctx ended first.
func (r *runner) endpointsDrained(ctx context.Context, observed api.TaskState) bool {
	r.mu.Lock()
	serving := observed == api.TaskState_TASK_STATE_RUNNING && len(r.task.GetNetworks()) > 0 && !r.removed
	r.mu.Unlock()
	if !serving || r.w.endpointGrace <= 0 || r.graceDone {
		return true
	}
	t := time.NewTimer(r.w.endpointGrace)
	defer t.Stop()
	select {
	case <-t.C:
		r.graceDone = true
		return true
	case <-ctx.Done():
		return false
	}
}

// report records and queues a state the task reached; one not past the
// furthest known is dropped.
func (r *runner) report(state api.TaskState, msg string, err error, code int) {
	r.mu.Lock()
	if state <= r.observed {
		r.mu.Unlock()
		return
	}
	r.observed = state
	r.mu.Unlock()
	st := &api.TaskStatus{State: state, Timestamp: timestamppb.Now(), Message: msg, ExitCode: int32(code)}
	if err != nil {
		st.Err = err.Error()
	}
	r.w.reports.report(r.id, st)
}

// exitCode is the workload's exit code carried by err, 0 if none.
func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	return 0
}
