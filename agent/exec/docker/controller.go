package docker

// This file owns the way up of a task's workload: Prepare (image, sandbox,
// network attachments, task container — undone if any step fails) and
// Start, plus the check of an adopted workload's attachments.

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/api"
)

// cleanupTimeout bounds undoing a failed Prepare, which must happen even
// when the Prepare's ctx has ended.
const cleanupTimeout = time.Minute

// controller is exec.Controller for one task.
type controller struct {
	e    *Executor
	task *api.Task
}

// Prepare makes the task's sandbox, attaches its networks and creates its
// container, unless the container exists. A failure leaves nothing behind.
func (c *controller) Prepare(ctx context.Context) error {
	id := c.task.GetId()
	st := c.e.lockTask(id)
	defer st.mu.Unlock()
	w, err := c.e.lookup(ctx, id)
	if err != nil {
		return fmt.Errorf("docker: prepare task %s: %w", id, err)
	}
	if w.task != nil {
		if err := c.verify(ctx, st, w); err != nil {
			return fmt.Errorf("docker: prepare task %s: %w", id, c.fail(ctx, st, w, err))
		}
		return nil
	}
	if w.sandbox != nil {
		// A Prepare that stopped between the sandbox and the task
		// container: its attachments are unknown, so start over.
		c.e.log.Info("removing the sandbox of an unfinished prepare", "task", id, "sandbox", name(w.sandbox))
		if err := c.e.removeSandbox(ctx, w.sandbox); err != nil {
			return fmt.Errorf("docker: prepare task %s: %w", id, err)
		}
	}
	if err := c.create(ctx, st); err != nil {
		return fmt.Errorf("docker: prepare task %s: %w", id, err)
	}
	return nil
}

// create makes the task's workload from nothing; st is locked.
func (c *controller) create(ctx context.Context, st *taskState) (err error) {
	t, nodeID := c.task, c.e.cfg.NodeID
	opts, err := taskContainer(t, nodeID)
	if err != nil {
		return err
	}
	if err := c.e.ensureImage(ctx, opts.Config.Image); err != nil {
		return err
	}
	c.e.attaching.RLock()
	defer c.e.attaching.RUnlock()
	sandboxID, err := c.e.createSandbox(ctx, t)
	if err != nil {
		return err
	}
	sb := Sandbox{ID: sandboxID} // its netns once it runs
	var containerID string
	attachCalled := false
	defer func() {
		if err != nil {
			c.e.undoPrepare(ctx, t.GetId(), sb, containerID, attachCalled)
		}
	}()

	if _, err := c.e.cli.ContainerStart(ctx, sandboxID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start the sandbox: %w", err)
	}
	res, err := c.e.cli.ContainerInspect(ctx, sandboxID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect the sandbox: %w", err)
	}
	sb = sandboxOf(&res.Container)
	if sb.NetNS == "" {
		return fmt.Errorf("the sandbox stopped as it started (%s)", res.Container.State.Status)
	}
	attachCalled = true
	if err := c.e.cfg.Networks.Attach(ctx, sb, t); err != nil {
		return fmt.Errorf("attach the task's networks: %w", err)
	}
	joinSandbox(&opts, sandboxID)
	created, err := c.e.cli.ContainerCreate(ctx, opts)
	if err != nil {
		return fmt.Errorf("create the task's container: %w", err)
	}
	containerID = created.ID
	st.verified, st.released = true, false
	c.e.log.Info("prepared a task", "task", t.GetId(), "container", opts.Name, "sandbox", name(&res.Container), "netns", sb.NetNS)
	return nil
}

// createSandbox creates t's sandbox container (not started) and returns
// its ID.
func (e *Executor) createSandbox(ctx context.Context, t *api.Task) (string, error) {
	for attempt := 0; ; attempt++ {
		image, err := e.pauseImage(ctx)
		if err != nil {
			return "", err
		}
		created, err := e.cli.ContainerCreate(ctx, sandboxContainer(t, e.cfg.NodeID, image))
		if cerrdefs.IsNotFound(err) && attempt == 0 {
			e.forgetPauseImage() // removed since it was built: build it again
			continue
		}
		if err != nil {
			return "", fmt.Errorf("create the sandbox: %w", err)
		}
		return created.ID, nil
	}
}

// undoPrepare removes what a failed Prepare made: the task container, the
// networks' attachments (if Attach was called: it may have done part of
// its work) and the sandbox. A sandbox whose Detach fails is kept, so the
// next Prepare or Remove finds it and detaches again.
func (e *Executor) undoPrepare(ctx context.Context, taskID string, sb Sandbox, containerID string, attachCalled bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	log := e.log.With("task", taskID)
	if containerID != "" {
		if err := e.removeContainer(ctx, containerID); err != nil {
			log.Warn("undo a failed prepare: remove the task's container", "err", err)
		}
	}
	if attachCalled {
		if err := e.cfg.Networks.Detach(ctx, sb); err != nil {
			// Stopped, its namespace and address are gone; kept, a later Prepare or Remove
			// detaches it again.
			log.Warn("undo a failed prepare: detach the sandbox; stopping it and keeping it for a later try", "sandbox", sb.ID, "err", err)
			if err := e.stopContainer(ctx, sb.ID); err != nil {
				log.Warn("undo a failed prepare: stop the sandbox", "sandbox", sb.ID, "err", err)
			}
			return
		}
	}
	if err := e.removeContainer(ctx, sb.ID); err != nil {
		log.Warn("undo a failed prepare: remove the sandbox", "sandbox", sb.ID, "err", err)
	}
}

// Start starts the task's container in its sandbox's netns, unless it has
// started already. A failed start releases the task's network.
func (c *controller) Start(ctx context.Context) error {
	id := c.task.GetId()
	st := c.e.lockTask(id)
	defer st.mu.Unlock()
	w, err := c.e.lookup(ctx, id)
	switch {
	case err != nil:
		return fmt.Errorf("docker: start task %s: %w", id, err)
	case w.task == nil:
		return fmt.Errorf("docker: start task %s: %w", id, exec.ErrNotFound)
	}
	if err := c.verify(ctx, st, w); err != nil {
		return fmt.Errorf("docker: start task %s: %w", id, c.fail(ctx, st, w, err))
	}
	if started(w.task) {
		return nil
	}
	if !running(w.sandbox) {
		return fmt.Errorf("docker: start task %s: %w", id, c.fail(ctx, st, w, sandboxGone(w.sandbox)))
	}
	if _, err := c.e.cli.ContainerStart(ctx, w.task.ID, client.ContainerStartOptions{}); err != nil {
		err = fmt.Errorf("start container %s: %w", name(w.task), err)
		return fmt.Errorf("docker: start task %s: %w", id, c.fail(ctx, st, w, err))
	}
	return nil
}

// verify checks, once, the attachments of a running sandbox this executor
// did not attach; st is locked.
func (c *controller) verify(ctx context.Context, st *taskState, w workload) error {
	if st.verified || !running(w.sandbox) {
		return nil
	}
	if err := c.e.cfg.Networks.Check(ctx, sandboxOf(w.sandbox), c.task); err != nil {
		return fmt.Errorf("check the networks of adopted sandbox %s: %w", name(w.sandbox), err)
	}
	st.verified = true
	c.e.log.Info("adopted a task", "task", c.task.GetId(), "sandbox", name(w.sandbox))
	return nil
}

// ErrSandboxGone is the cause of a task failed because its sandbox
// container stopped or vanished under it.
var ErrSandboxGone = errors.New("the task's sandbox container is gone")

// sandboxGone says how sb went: missing, or ended.
func sandboxGone(sb *container.InspectResponse) error {
	if sb == nil {
		return fmt.Errorf("%w: removed", ErrSandboxGone)
	}
	return fmt.Errorf("%w: %s is %s (exit code %d)", ErrSandboxGone, name(sb), sb.State.Status, sb.State.ExitCode)
}
