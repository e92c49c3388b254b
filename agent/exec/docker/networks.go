package docker

// This file owns the executor's contract with the node's CNI manager
// (agent/cni), which implements Networks.

import (
	"context"

	"github.com/shoal/shoal/api"
)

// Sandbox is a task's network namespace holder: the sandbox container's ID
// and its netns path ("/proc/<pid>/ns/net"; empty when the container no
// longer runs).
type Sandbox struct{ ID, NetNS string }

// Networks attaches tasks' sandboxes to their networks. The executor calls
// Attach once per sandbox it creates, Check once on a running sandbox it
// adopted, and Detach when the task ends, again when it is removed, and
// whenever it drops a sandbox Attach may have touched (a failed or
// interrupted Prepare). Calls for one task never overlap.
type Networks interface {
	// Attach runs CNI ADD for each of t.Networks in sb's netns; with no
	// networks it does nothing.
	Attach(ctx context.Context, sb Sandbox, t *api.Task) error
	// Check runs CNI CHECK for each of t.Networks, on adoption.
	Check(ctx context.Context, sb Sandbox, t *api.Task) error
	// Detach runs CNI DEL of everything attached to sb.ID. It is
	// idempotent and works without the netns (sb.NetNS empty).
	Detach(ctx context.Context, sb Sandbox) error
}
