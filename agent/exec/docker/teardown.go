package docker

// This file owns the way down: Shutdown, Remove, and the steps they share
// with a failing task — stop the task's container, release its network
// (detach, stop the sandbox), remove containers — each tolerating what is
// already stopped or gone.

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/netns"
)

// Shutdown stops the task's container within its stop grace period (then
// the engine kills it) and releases its network.
func (c *controller) Shutdown(ctx context.Context) error {
	id := c.task.GetId()
	st := c.e.lockTask(id)
	defer st.mu.Unlock()
	w, err := c.e.lookup(ctx, id)
	if err != nil {
		return fmt.Errorf("docker: shut down task %s: %w", id, err)
	}
	if err := c.e.halt(ctx, st, w); err != nil {
		return fmt.Errorf("docker: shut down task %s: %w", id, err)
	}
	return nil
}

// Remove stops and removes the task's container, detaches and removes its
// sandbox. The sandbox stays when its Detach fails, so that a later
// Remove detaches it.
func (c *controller) Remove(ctx context.Context) error {
	id := c.task.GetId()
	st := c.e.lockTask(id)
	defer st.mu.Unlock()
	w, err := c.e.lookup(ctx, id)
	if err != nil {
		return fmt.Errorf("docker: remove task %s: %w", id, err)
	}
	if w.task != nil {
		err := c.e.stopContainer(ctx, w.task.ID)
		if err == nil {
			err = c.e.removeContainer(ctx, w.task.ID)
		}
		if err != nil {
			// The sandbox stays while the task's container may use it.
			return fmt.Errorf("docker: remove task %s: %w", id, err)
		}
	}
	if w.sandbox != nil {
		if err := c.e.removeSandbox(ctx, w.sandbox); err != nil {
			return fmt.Errorf("docker: remove task %s: %w", id, err)
		}
	}
	c.e.unpin(id) // also one left by a Prepare that stopped before its sandbox
	c.e.removeResolvConf(id)
	c.e.forgetTask(id, st)
	if w.task != nil || w.sandbox != nil {
		c.e.log.Info("removed a task", "task", id)
	}
	return nil
}

// fail ends a task that cannot go on: it stops the task's container and
// releases its network, and returns cause — as an *exec.ExitError with the
// container's exit code when the container had started. When ctx has
// ended, cause may be ctx's doing: nothing is stopped and cause is
// returned as is. st is locked.
func (c *controller) fail(ctx context.Context, st *taskState, w workload, cause error) error {
	if ctx.Err() != nil {
		return cause
	}
	c.e.log.Warn("failing a task", "task", c.task.GetId(), "cause", cause)
	if err := c.e.halt(ctx, st, w); err != nil {
		c.e.log.Warn("stop a failed task", "task", c.task.GetId(), "err", err)
	}
	if !started(w.task) {
		return cause
	}
	code := -1
	if res, err := c.e.cli.ContainerInspect(ctx, w.task.ID, client.ContainerInspectOptions{}); err == nil && res.Container.State != nil {
		code = res.Container.State.ExitCode
	}
	return &exec.ExitError{Code: code, Cause: cause}
}

// halt stops the task's container and releases its network; st is locked.
func (e *Executor) halt(ctx context.Context, st *taskState, w workload) error {
	if running(w.task) {
		st.stopped = true
		if err := e.stopContainer(ctx, w.task.ID); err != nil {
			return err
		}
	}
	return e.release(ctx, st, w)
}

// release detaches the task's networks, stops its sandbox and unpins its
// netns, once per executor; st is locked.
//
// The sandbox is stopped and the pin removed even when the Detach fails: the namespace, and with
// it the container's end of every veth and the task's address, goes with the last of them, so the
// address is off the wire before the task's end is reported and the manager gives it to another
// task. The stopped sandbox is kept, and a later Remove detaches it again (DEL works without the
// namespace).
func (e *Executor) release(ctx context.Context, st *taskState, w workload) error {
	if st.released || w.sandbox == nil {
		return nil
	}
	detachErr := e.cfg.Networks.Detach(ctx, e.sandboxOf(w.sandbox))
	if running(w.sandbox) {
		if err := e.stopContainer(ctx, w.sandbox.ID); err != nil {
			return errors.Join(detachErr, err)
		}
	}
	if err := netns.Unpin(e.pinPath(taskOf(w.sandbox))); err != nil {
		return errors.Join(detachErr, err)
	}
	if detachErr != nil {
		return fmt.Errorf("detach sandbox %s (stopped, kept for a later try): %w", name(w.sandbox), detachErr)
	}
	st.released = true
	return nil
}

// removeSandbox detaches the sandbox sb, removes it and unpins its netns. When the Detach fails
// it stops sb and unpins (see release) and keeps sb for a later try.
func (e *Executor) removeSandbox(ctx context.Context, sb *container.InspectResponse) error {
	pin := e.pinPath(taskOf(sb))
	if err := e.cfg.Networks.Detach(ctx, e.sandboxOf(sb)); err != nil {
		if stopErr := e.stopContainer(ctx, sb.ID); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		if unpinErr := netns.Unpin(pin); unpinErr != nil {
			err = errors.Join(err, unpinErr)
		}
		return fmt.Errorf("detach sandbox %s (stopped, kept for a later try): %w", name(sb), err)
	}
	if err := e.removeContainer(ctx, sb.ID); err != nil {
		return err
	}
	return netns.Unpin(pin)
}

// stopContainer stops container id within its stop timeout, then the
// engine kills it. A container stopped or gone is fine.
func (e *Executor) stopContainer(ctx context.Context, id string) error {
	_, err := e.cli.ContainerStop(ctx, id, client.ContainerStopOptions{})
	if err == nil || cerrdefs.IsNotFound(err) || cerrdefs.IsNotModified(err) {
		return nil
	}
	return fmt.Errorf("stop container %s: %w", id, err)
}

// removeContainer removes container id, running or not, with its
// anonymous volumes. A container gone is fine.
func (e *Executor) removeContainer(ctx context.Context, id string) error {
	_, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("remove container %s: %w", id, err)
}
