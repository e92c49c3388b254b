package docker

// This file owns Wait: it watches both of a task's containers, and ends
// the task when either ends — the task's container by itself (its exit
// code is the result, once the network is released), or the sandbox under
// a running task (the task is stopped and failed).

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/shoal/shoal/agent/exec"
)

// ErrOutOfMemory is the cause of a task's exit when the kernel killed it
// for exceeding its memory limit.
var ErrOutOfMemory = errors.New("killed: out of memory")

// Wait returns when the task's container has ended: nil for exit code 0,
// an *exec.ExitError otherwise, exec.ErrNotFound when there is no
// container. A container that has exited is reported even when ctx has
// ended.
func (c *controller) Wait(ctx context.Context) error {
	for {
		w, done, err := c.settle(ctx)
		if done && c.mayGainOOMMark(w) {
			// Outside the task's lock: a stop or removal need not wait.
			readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			return exitResult(c.e.awaitOOMMark(readCtx, w.task))
		}
		if done {
			return err
		}
		if err := c.waitEither(ctx, w); err != nil {
			return err
		}
		// Something ended: settle says what.
	}
}

// settle looks at the workload and, if it has ended (or must), ends it
// and returns Wait's result with done true; otherwise both containers run.
// An exit is read and reported even when ctx has ended.
func (c *controller) settle(ctx context.Context) (w workload, done bool, result error) {
	id := c.task.GetId()
	st := c.e.lockTask(id)
	defer st.mu.Unlock()
	readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	w, err := c.e.lookup(readCtx, id)
	switch {
	case err != nil:
		return w, true, fmt.Errorf("docker: wait for task %s: %w", id, err)
	case w.task == nil:
		return w, true, fmt.Errorf("docker: wait for task %s: %w", id, exec.ErrNotFound)
	case !started(w.task):
		return w, true, fmt.Errorf("docker: wait for task %s: container %s was never started", id, name(w.task))
	case !running(w.task):
		if err := c.e.release(readCtx, st, w); err != nil {
			// Remove detaches again; the exit is still the result.
			c.e.log.Warn("release the network of an exited task", "task", id, "err", err)
		}
		return w, true, exitResult(w.task)
	case ctx.Err() != nil:
		return w, true, ctx.Err()
	}
	if err := c.verify(ctx, st, w); err != nil {
		return w, true, c.fail(ctx, st, w, err)
	}
	if !running(w.sandbox) {
		return w, true, c.fail(ctx, st, w, sandboxGone(w.sandbox))
	}
	return w, false, nil
}

// waitEither returns nil once either of w's containers has stopped or
// vanished, or ctx's error.
func (c *controller) waitEither(ctx context.Context, w workload) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning}
	task := c.e.cli.ContainerWait(ctx, w.task.ID, opts)
	sandbox := c.e.cli.ContainerWait(ctx, w.sandbox.ID, opts)
	var err error
	select {
	case <-task.Result:
		return nil
	case <-sandbox.Result:
		return nil
	case err = <-task.Error:
	case err = <-sandbox.Error:
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case cerrdefs.IsNotFound(err):
		return nil // removed: settle sees it
	}
	return fmt.Errorf("docker: wait for task %s: %w", c.task.GetId(), err)
}

// oomMarkWait bounds how long Wait looks again for the engine's
// out-of-memory mark on a container that was killed (exit code 137) under a
// memory limit: the engine takes the kernel's OOM event apart from the exit
// and may mark the container after the exit is visible.
//
// The engine cannot mark a kill it never heard of: containerd's runc shim
// adds a container's memory cgroup to its OOM monitor only after the start
// has returned, so a task killed for memory in its first moments (under
// load, up to some hundreds of milliseconds) exits with code 137 and no
// cause. Wait reports what the engine knows; it does not guess.
const (
	oomMarkWait = time.Second
	oomMarkPoll = 50 * time.Millisecond
)

// mayGainOOMMark says the task's container in w has exited killed under a
// memory limit, without the engine's mark yet, and not because this
// executor stopped it (then it was killed, if at all, at the end of its
// grace period).
func (c *controller) mayGainOOMMark(w workload) bool {
	if w.task == nil || running(w.task) || !killedUnderMemoryLimit(w.task) {
		return false
	}
	st := c.e.lockTask(c.task.GetId())
	defer st.mu.Unlock()
	return !st.stopped
}

// killedUnderMemoryLimit says c was killed (exit code 137) under a memory
// limit and the engine has not marked it killed for memory (yet).
func killedUnderMemoryLimit(c *container.InspectResponse) bool {
	return !c.State.OOMKilled && c.State.ExitCode == 137 && c.HostConfig != nil && c.HostConfig.Memory > 0
}

// awaitOOMMark returns c, or c inspected again once the engine has marked
// it killed for memory. Only a container killedUnderMemoryLimit is looked
// at again, for at most oomMarkWait.
func (e *Executor) awaitOOMMark(ctx context.Context, c *container.InspectResponse) *container.InspectResponse {
	if !killedUnderMemoryLimit(c) {
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, oomMarkWait)
	defer cancel()
	tick := time.NewTicker(oomMarkPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return c
		case <-tick.C:
		}
		res, err := e.cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return c
		}
		if res.Container.State != nil && res.Container.State.OOMKilled {
			return &res.Container
		}
	}
}

// exitResult is Wait's result for the exited container c.
func exitResult(c *container.InspectResponse) error {
	st := c.State
	switch {
	case st.ExitCode == 0:
		return nil
	case st.OOMKilled:
		return &exec.ExitError{Code: st.ExitCode, Cause: ErrOutOfMemory}
	case st.Error != "":
		return &exec.ExitError{Code: st.ExitCode, Cause: errors.New(st.Error)}
	}
	return &exec.ExitError{Code: st.ExitCode}
}
