package sim

// This file owns a simulated task's life: prepared, starting (for the start
// delay), running (until stopped or for its run time), exited — and the
// controller that moves it. State changes happen under the executor's
// lock; delays are events on the executor's timeline.

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/api"
)

type phase int

const (
	prepared phase = iota
	starting
	running
	exited
)

// workload is one simulated task. Fields are guarded by Executor.mu.
type workload struct {
	params   params
	phase    phase
	startErr error         // why the start failed, nil if it did not
	exitCode int           // valid once exited
	started  chan struct{} // closed when the start's outcome is known
	done     chan struct{} // closed on exit
}

// errStopped is a start's outcome when the task was stopped while starting.
var errStopped = errors.New("sim: stopped before it started")

// controller is exec.Controller for one task.
type controller struct {
	e    *Executor
	task *api.Task
}

func (c *controller) workload() *workload { return c.e.workloads[c.task.Id] }

func (c *controller) Prepare(context.Context) error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if c.workload() != nil {
		return nil
	}
	p, err := c.e.paramsFor(c.task)
	if err != nil {
		return err
	}
	c.e.workloads[c.task.Id] = &workload{params: p, started: make(chan struct{}), done: make(chan struct{})}
	return nil
}

func (c *controller) Start(ctx context.Context) error {
	c.e.mu.Lock()
	w := c.workload()
	if w == nil {
		c.e.mu.Unlock()
		return fmt.Errorf("sim: start: %w", exec.ErrNotFound)
	}
	if w.phase == prepared {
		w.phase = starting
		if w.params.startDelay == 0 {
			c.e.begin(w)
		} else {
			c.e.clock.after(w.params.startDelay, func() {
				c.e.mu.Lock()
				defer c.e.mu.Unlock()
				c.e.begin(w)
			})
		}
	}
	c.e.mu.Unlock()
	select {
	case <-w.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	return w.startErr
}

// begin ends w's start: it fails or runs; e.mu is held.
func (e *Executor) begin(w *workload) {
	if w.phase != starting {
		return // stopped while starting
	}
	if w.params.failStart {
		w.startErr = errors.New("sim: the task failed to start (simulated failure)")
		e.exit(w, 128)
		return
	}
	w.phase = running
	close(w.started)
	if w.params.runFor > 0 {
		e.clock.after(w.params.runFor, func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if w.phase == running {
				e.exit(w, w.params.exitCode)
			}
		})
	}
}

// exit ends w with code; e.mu is held.
func (e *Executor) exit(w *workload, code int) {
	if w.phase == exited {
		return
	}
	if w.phase != running {
		if w.startErr == nil {
			w.startErr = errStopped
		}
		close(w.started)
	}
	w.phase = exited
	w.exitCode = code
	close(w.done)
}

func (c *controller) Wait(ctx context.Context) error {
	c.e.mu.Lock()
	w := c.workload()
	c.e.mu.Unlock()
	if w == nil {
		return fmt.Errorf("sim: wait: %w", exec.ErrNotFound)
	}
	select {
	case <-w.done: // an exit wins over an ended ctx
	default:
		select {
		case <-w.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if w.exitCode == 0 && w.startErr == nil {
		return nil
	}
	return &exec.ExitError{Code: w.exitCode, Cause: w.startErr}
}

func (c *controller) Shutdown(context.Context) error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if w := c.workload(); w != nil {
		c.e.exit(w, 0)
	}
	return nil
}

func (c *controller) Remove(ctx context.Context) error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if w := c.workload(); w != nil {
		c.e.exit(w, 0)
		delete(c.e.workloads, c.task.Id)
	}
	return nil
}
