package docker

// This file owns what the executor knows of one task: the containers the
// engine holds for it (looked up by label on every call, never cached)
// and the little the executor itself remembers — whether it has verified
// the task's attachments and released its network — which an executor
// made after a restart rightly does not know.

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/shoal/shoal/agent/netns"
)

// workload is the engine's view of one task: either container may be nil.
type workload struct {
	task    *container.InspectResponse
	sandbox *container.InspectResponse
}

// taskState is what this executor remembers of a task. mu serialises the
// calls that change the task's workload.
type taskState struct {
	mu       sync.Mutex
	verified bool // this executor attached or checked the networks
	released bool // the networks are detached and the sandbox stopped
	stopped  bool // this executor asked the engine to stop the task's container
}

// taskState returns the state of task id, made on first use.
func (e *Executor) taskState(id string) *taskState {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.tasks[id]
	if st == nil {
		st = &taskState{}
		e.tasks[id] = st
	}
	return st
}

// lockTask returns the state of task id, locked.
func (e *Executor) lockTask(id string) *taskState {
	st := e.taskState(id)
	st.mu.Lock()
	return st
}

// forgetTask drops the state of a removed task.
func (e *Executor) forgetTask(id string, st *taskState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tasks[id] == st {
		delete(e.tasks, id)
	}
}

// lookup finds task id's containers on this node.
func (e *Executor) lookup(ctx context.Context, id string) (workload, error) {
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelTaskID+"="+id, LabelNodeID+"="+e.cfg.NodeID),
	})
	if err != nil {
		return workload{}, fmt.Errorf("list the task's containers: %w", err)
	}
	var w workload
	for _, c := range list.Items {
		var slot **container.InspectResponse
		switch c.Labels[LabelRole] {
		case RoleTask:
			slot = &w.task
		case RoleSandbox:
			slot = &w.sandbox
		default:
			continue
		}
		if *slot != nil {
			// Names are fixed per task, so the engine refuses a second
			// one; only a hand-made copy gets here.
			e.log.Warn("a task has two containers of one role; using one", "task", id,
				"role", c.Labels[LabelRole], "used", (*slot).ID, "ignored", c.ID)
			continue
		}
		res, err := e.cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue // removed since the list
		}
		if err != nil {
			return workload{}, fmt.Errorf("inspect container %s: %w", c.ID, err)
		}
		*slot = &res.Container
	}
	return w, nil
}

// running says c exists and runs.
func running(c *container.InspectResponse) bool {
	return c != nil && c.State != nil && c.State.Running
}

// started says c exists and was started at some point: it runs or ran.
func started(c *container.InspectResponse) bool {
	return c != nil && c.State != nil && c.State.Status != container.StateCreated
}

// sandboxOf is the Networks' view of the sandbox container c: its task's
// pinned netns while the pin exists, else (a sandbox of an earlier
// version, which had a namespace of its own) its process's while it runs.
func (e *Executor) sandboxOf(c *container.InspectResponse) Sandbox {
	sb := Sandbox{ID: c.ID}
	if pin := e.pinPath(taskOf(c)); taskOf(c) != "" && netns.Pinned(pin) {
		sb.NetNS = pin
	} else if running(c) && c.State.Pid > 0 {
		sb.NetNS = fmt.Sprintf("/proc/%d/ns/net", c.State.Pid)
	}
	return sb
}

// taskOf is the task ID container c is labelled with.
func taskOf(c *container.InspectResponse) string {
	if c.Config == nil {
		return ""
	}
	return c.Config.Labels[LabelTaskID]
}

// pinPath is where task taskID's netns is pinned.
func (e *Executor) pinPath(taskID string) string {
	return filepath.Join(e.cfg.NetNSDir, taskID)
}

// unpin removes task taskID's netns pin, if any; the namespace ends with
// the last process in it. A failure is logged: the pin is retried by the
// next Remove and by CollectGarbage.
func (e *Executor) unpin(taskID string) {
	if err := netns.Unpin(e.pinPath(taskID)); err != nil {
		e.log.Warn("remove a task's netns pin", "task", taskID, "err", err)
	}
}

// name is c's name without the engine's leading slash.
func name(c *container.InspectResponse) string {
	if len(c.Name) > 0 && c.Name[0] == '/' {
		return c.Name[1:]
	}
	return c.Name
}
