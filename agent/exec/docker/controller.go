package docker

// This file owns the way up of a task's workload: Prepare (image, sandbox,
// network attachments, task container — undone if any step fails) and
// Start, plus the check of an adopted workload's attachments.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/netns"
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
	pin := c.e.pinPath(t.GetId())
	if err := netns.Pin(pin); err != nil {
		return err
	}
	sandboxID, err := c.e.createSandbox(ctx, t, pin)
	if err != nil {
		c.e.unpin(t.GetId())
		return err
	}
	sb := Sandbox{ID: sandboxID, NetNS: pin}
	var containerID string
	attachCalled := false
	defer func() {
		if err != nil {
			c.e.undoPrepare(ctx, t.GetId(), sb, containerID, attachCalled)
		}
	}()

	// The namespace exists already: attach it while the sandbox starts.
	attachCalled = true
	attached := make(chan error, 1)
	go func() { attached <- c.e.cfg.Networks.Attach(ctx, sb, t) }()
	startErr := c.e.startSandbox(ctx, sandboxID, pin)
	if err := <-attached; err != nil {
		return fmt.Errorf("attach the task's networks: %w", err)
	}
	if startErr != nil {
		return startErr
	}
	res, err := c.e.cli.ContainerInspect(ctx, sandboxID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect the sandbox: %w", err)
	}
	joinSandbox(&opts, sandboxID)
	if m, ok, err := c.e.resolvConfMount(t); err != nil {
		return err
	} else if ok {
		opts.HostConfig.Mounts = append(opts.HostConfig.Mounts, m)
	}
	created, err := c.e.cli.ContainerCreate(ctx, opts)
	if err != nil {
		return fmt.Errorf("create the task's container: %w", err)
	}
	containerID = created.ID
	st.verified, st.released = true, false
	c.e.log.Info("prepared a task", "task", t.GetId(), "container", opts.Name, "sandbox", name(&res.Container), "netns", sb.NetNS)
	return nil
}

// createSandbox creates t's sandbox container (not started), which will
// hold the netns pinned at pin, and returns its ID.
func (e *Executor) createSandbox(ctx context.Context, t *api.Task, pin string) (string, error) {
	for attempt := 0; ; attempt++ {
		image, err := e.pauseImage(ctx)
		if err != nil {
			return "", err
		}
		created, err := e.cli.ContainerCreate(ctx, sandboxContainer(t, e.cfg.NodeID, image, pin))
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

// sandboxJoinTimeout bounds the wait for a started sandbox's process to
// join its pinned netns (it does so first thing).
const sandboxJoinTimeout = 10 * time.Second

// startSandbox starts the sandbox container id and waits until its process
// is in the netns pinned at pin: the engine joins the task's container to
// that process's namespace, which until then is the host's.
func (e *Executor) startSandbox(ctx context.Context, id, pin string) error {
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start the sandbox: %w", err)
	}
	deadline := time.Now().Add(sandboxJoinTimeout)
	for pid := 0; ; {
		if pid == 0 {
			res, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			if err != nil {
				return fmt.Errorf("inspect the sandbox: %w", err)
			}
			if !running(&res.Container) {
				return fmt.Errorf("the sandbox stopped as it started (%s, exit code %d): %s",
					res.Container.State.Status, res.Container.State.ExitCode, e.lastWords(ctx, id))
			}
			pid = res.Container.State.Pid
		}
		in, err := netns.Same(fmt.Sprintf("/proc/%d/ns/net", pid), pin)
		switch {
		case err != nil:
			pid = 0 // ended or restarted: ask the engine again
		case in:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sandbox's process did not join the netns at %s within %v", pin, sandboxJoinTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the sandbox to join its netns: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// lastWords is the end of what container id wrote to stderr, for an error
// message: the container is removed with the failed Prepare.
func (e *Executor) lastWords(ctx context.Context, id string) string {
	logs, err := e.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStderr: true, Tail: "3"})
	if err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	defer logs.Close()
	var stderr strings.Builder
	if _, err := stdcopy.StdCopy(io.Discard, &stderr, io.LimitReader(logs, 4096)); err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		return strconv.Quote(s)
	}
	return "(it wrote nothing)"
}

// undoPrepare removes what a failed Prepare made: the task container, the
// networks' attachments (if Attach was called: it may have done part of
// its work) and the sandbox. A sandbox whose Detach fails is kept, so the
// next Prepare or Remove finds it and detaches again.
func (e *Executor) undoPrepare(ctx context.Context, taskID string, sb Sandbox, containerID string, attachCalled bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	log := e.log.With("task", taskID)
	e.removeResolvConf(taskID)
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
			e.unpin(taskID)
			return
		}
	}
	if err := e.removeContainer(ctx, sb.ID); err != nil {
		log.Warn("undo a failed prepare: remove the sandbox", "sandbox", sb.ID, "err", err)
	}
	e.unpin(taskID)
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
	if err := c.waitTargetPorts(ctx, w); err != nil {
		return fmt.Errorf("docker: start task %s: %w", id, err)
	}
	return nil
}

// waitTargetPorts waits (ready.go) until the task listens on its service's TCP target ports, so
// that it is RUNNING, and behind its service's VIP, only once it can take connections.
// It returns an error only when ctx ended first: the task is being stopped, and must not be
// reported RUNNING.
func (c *controller) waitTargetPorts(ctx context.Context, w workload) error {
	ports := tcpTargetPorts(c.task)
	if len(ports) == 0 || w.sandbox == nil || w.sandbox.State == nil || w.sandbox.State.Pid == 0 {
		return nil
	}
	start := time.Now()
	missing, err := waitListening(ctx, w.sandbox.State.Pid, ports, portsReadyTimeout)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("wait for target ports %v: %w", missing, ctx.Err())
	case err != nil:
		c.e.log.Warn("read the task's sockets; reporting it running", "task", c.task.GetId(), "err", err)
	case len(missing) > 0:
		c.e.log.Warn("the task does not listen on its target ports; reporting it running anyway",
			"task", c.task.GetId(), "ports", missing, "waited", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// verify checks, once, the attachments of a running sandbox this executor
// did not attach; st is locked.
func (c *controller) verify(ctx context.Context, st *taskState, w workload) error {
	if st.verified || !running(w.sandbox) {
		return nil
	}
	if err := c.e.cfg.Networks.Check(ctx, c.e.sandboxOf(w.sandbox), c.task); err != nil {
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
