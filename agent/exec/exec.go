// Package exec is the agent's boundary with whatever runs tasks: an
// Executor describes the node and hands out a Controller per task, which
// takes the task's workload (a container and its network attachments)
// through prepare, start, wait, shutdown and remove.
//
// An executor outlives agents: a node creates one and hands it to every
// agent it runs (across sessions, leader changes and role switches), and a
// workload keeps running when the agent that started it stops. A new agent
// adopts running workloads by asking for their controllers again, so the
// implementations' duties are:
//
//  1. Controller(t) for a task whose workload exists controls that
//     workload; it does not create one (Prepare does).
//  2. Prepare does nothing to a workload that is already prepared or past
//     it, and Start nothing to one already started (even if it exited
//     since): an agent repeats the step a task was last reported at.
//  3. The ctx of a call bounds the call, never the workload's life.
//  4. Shutdown and Remove tolerate a workload that is stopped or gone, and
//     work with a controller made from a task holding only its ID (an
//     agent cleaning up workloads of tasks the cluster forgot).
//
// It imports only api; executors live in sub-packages (sim; docker later).
package exec

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal/shoal/api"
)

// Executor runs a node's tasks.
type Executor interface {
	// Describe reports what the node offers tasks: resources, engine
	// labels, engine version and the executor's name. The agent adds the
	// hostname, OS and architecture.
	Describe(ctx context.Context) (*api.NodeDescription, error)
	// Controller returns the controller of t's workload.
	Controller(t *api.Task) (Controller, error)
	// Tasks lists the IDs of the tasks whose workloads exist, running or
	// not.
	Tasks(ctx context.Context) ([]string, error)
}

// Collector is an Executor that holds node resources beyond its
// workloads (CNI attachments): CollectGarbage releases those no workload
// holds any more. The agent calls it after each resync with the cluster,
// once it has removed the workloads of tasks the cluster forgot.
type Collector interface {
	CollectGarbage(ctx context.Context) error
}

// Controller drives one task's workload.
type Controller interface {
	// Prepare makes the workload ready to start: image, container,
	// network attachments.
	Prepare(ctx context.Context) error
	// Start starts the prepared workload and returns once it runs.
	Start(ctx context.Context) error
	// Wait blocks until the workload exits or ctx ends. It returns nil
	// for a clean exit, an *ExitError for a failed one, and ErrNotFound
	// when there is no workload. A workload that has exited is reported
	// as such even when ctx has ended.
	Wait(ctx context.Context) error
	// Shutdown stops the workload, gracefully within the task's stop
	// grace period.
	Shutdown(ctx context.Context) error
	// Remove releases everything the workload holds, stopping it first.
	Remove(ctx context.Context) error
}

// ErrNotFound says a task has no workload: never prepared, removed, or lost
// (the executor restarted).
var ErrNotFound = errors.New("the task's workload does not exist")

// ExitError is a workload's failed exit.
type ExitError struct {
	Code  int
	Cause error // what made it fail, when the executor knows
}

func (e *ExitError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("exit code %d: %v", e.Code, e.Cause)
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

func (e *ExitError) Unwrap() error { return e.Cause }
