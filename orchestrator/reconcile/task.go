package reconcile

// This file owns the task lifecycle rules every reconciler applies the same
// way: making a task from a service, telling whether a task is out of date
// or still meant to run, and whether a node may keep tasks.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
)

// DefaultTaskHistory is how many finished tasks are kept per slot when the
// cluster spec sets no task_history_retention_limit.
const DefaultTaskHistory = 5

// Slot is the tasks of one replicated slot, or of one node of a global
// service: the running task and its predecessors.
type Slot []*api.Task

// Updater replaces out-of-date tasks with tasks of the service's current
// spec. The replicated and global reconcilers hand it, on every pass, the
// slots holding a task whose spec_version differs from the service's, and
// call it with no slot while UpdateInProgress says so (only the Updater
// ends an update, and one may have no slot left to roll: a leader gone
// after its last group started, no replicas, no eligible node). It must be
// safe to call again with the same slots (a later event, a new leader)
// while an update is in flight.
type Updater interface {
	Update(ctx context.Context, service *api.Service, slots []Slot)
}

// HandToUpdater applies the calling rule above: after a reconciler's pass
// committed, u (if any) gets service's out-of-date slots, or none while an
// update is in progress.
func HandToUpdater(ctx context.Context, u Updater, service *api.Service, dirty []Slot) {
	if u != nil && service != nil && (len(dirty) > 0 || UpdateInProgress(service)) {
		u.Update(ctx, service, dirty)
	}
}

// UpdateInProgress reports whether service's update_status says an update
// or a rollback is under way (UPDATING, ROLLBACK_STARTED); false for nil.
func UpdateInProgress(service *api.Service) bool {
	switch service.GetUpdateStatus().GetState() {
	case api.UpdateStatus_STATE_UPDATING, api.UpdateStatus_STATE_ROLLBACK_STARTED:
		return true
	}
	return false
}

// TaskMessageAllocating is the status message of a task made NEW: its
// service attaches to networks, and it waits for the allocator to give it
// its slot's addresses.
const TaskMessageAllocating = "waiting for network addresses"

// NewTask returns a task of service for slot (replicated) or nodeID
// (global), desired RUNNING. It starts NEW when the service attaches to
// networks, for the allocator to give it its addresses and make it
// PENDING; otherwise PENDING: ready for the scheduler, which places tasks
// with no node and admits those with one.
func NewTask(service *api.Service, slot uint64, nodeID string, now time.Time) *api.Task {
	ts := timestamppb.New(now)
	state, msg := api.TaskState_TASK_STATE_PENDING, api.TaskMessagePendingScheduling
	if len(service.GetSpec().GetTask().GetNetworks()) > 0 {
		state, msg = api.TaskState_TASK_STATE_NEW, TaskMessageAllocating
	}
	return &api.Task{
		Id:           api.NewID(),
		ServiceId:    service.Id,
		ServiceName:  service.GetSpec().GetAnnotations().GetName(),
		Slot:         slot,
		NodeId:       nodeID,
		Spec:         proto.Clone(service.GetSpec().GetTask()).(*api.TaskSpec),
		SpecVersion:  service.SpecVersion,
		Endpoint:     proto.Clone(service.GetSpec().GetEndpoint()).(*api.EndpointSpec),
		DesiredState: api.TaskState_TASK_STATE_RUNNING,
		Status:       &api.TaskStatus{State: state, Timestamp: ts, Message: msg},
	}
}

// TaskName is the name a task goes by in listings and container names:
// "<service>.<slot>", or "<service>.<node id>" for a global service's task.
func TaskName(t *api.Task) string {
	if t.Slot == 0 {
		return fmt.Sprintf("%s.%s", t.ServiceName, t.NodeId)
	}
	return fmt.Sprintf("%s.%d", t.ServiceName, t.Slot)
}

// IsReplicated and IsGlobal tell a service's mode.
func IsReplicated(s *api.Service) bool { return s.GetSpec().GetReplicated() != nil }

// IsGlobal reports whether s runs one task per eligible node.
func IsGlobal(s *api.Service) bool { return s.GetSpec().GetGlobal() != nil }

// IsTaskDirty reports whether t was made from another spec than service's
// current one, so the updater must replace it.
func IsTaskDirty(service *api.Service, t *api.Task) bool {
	return t.SpecVersion != service.SpecVersion
}

// MeantToRun reports whether t is desired RUNNING (or on its way to it).
func MeantToRun(t *api.Task) bool {
	return t.DesiredState <= api.TaskState_TASK_STATE_RUNNING
}

// OccupiesSlot reports whether t holds its slot: it is meant to run, or it
// finished and its restart policy said not to replace it (desired
// COMPLETE). A slot none of whose tasks occupies it is free.
func OccupiesSlot(t *api.Task) bool {
	return t.DesiredState <= api.TaskState_TASK_STATE_COMPLETE
}

// Holders splits the tasks holding slot (OccupiesSlot) into those that
// keep it, one per spec_version, and the extra ones, to be shut down. Two
// holders of one spec_version are never intended: an old leader's race
// made them. Holders of different spec_versions are the Updater's
// business: a start-first update runs the new task beside the old one
// until it is up, so both are kept. Of one spec_version, the task kept is
// the one furthest along (see furtherAlong).
func Holders(slot Slot) (keep, extra []*api.Task) {
	var holders []*api.Task
	for _, t := range slot {
		if OccupiesSlot(t) {
			holders = append(holders, t)
		}
	}
	slices.SortFunc(holders, furtherAlong)
	kept := make(map[uint64]bool)
	for _, t := range holders {
		if kept[t.SpecVersion] {
			extra = append(extra, t)
			continue
		}
		kept[t.SpecVersion] = true
		keep = append(keep, t)
	}
	return keep, extra
}

// furtherAlong orders a before b (negative) when a has the better claim to
// keep its slot: a task meant to run and not ended first, then one meant to
// run that ended (its restart is under way), then one completed for good;
// within each, the higher observed state (RUNNING beats STARTING beats
// PENDING), then the newest, then the greater ID so the choice never
// depends on the order tasks were read in.
func furtherAlong(a, b *api.Task) int {
	claim := func(t *api.Task) int {
		switch {
		case MeantToRun(t) && !IsTerminal(t.GetStatus().GetState()):
			return 0
		case MeantToRun(t):
			return 1
		}
		return 2
	}
	return cmp.Or(
		cmp.Compare(claim(a), claim(b)),
		cmp.Compare(b.GetStatus().GetState(), a.GetStatus().GetState()),
		b.GetMeta().GetCreatedAt().AsTime().Compare(a.GetMeta().GetCreatedAt().AsTime()),
		cmp.Compare(b.Id, a.Id),
	)
}

// IsTerminal reports whether an observed state is final.
func IsTerminal(s api.TaskState) bool { return s > api.TaskState_TASK_STATE_RUNNING }

// NodeKeepsTasks reports whether tasks may stay on n: it exists, is not
// down and is not drained. A paused node keeps its tasks but gets no new
// ones (the scheduler's business).
func NodeKeepsTasks(n *api.Node) bool {
	if n == nil {
		return false
	}
	if n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN {
		return false
	}
	return n.GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_DRAIN
}

// SetStatus moves t's observed state, stamping it with now.
func SetStatus(t *api.Task, state api.TaskState, msg string, now time.Time) {
	if t.Status == nil {
		t.Status = &api.TaskStatus{}
	}
	t.Status.State = state
	t.Status.Message = msg
	t.Status.Timestamp = timestamppb.New(now)
}

// TaskHistoryLimit is the cluster's task_history_retention_limit, or the
// default when unset.
func TaskHistoryLimit(c *api.Cluster) int {
	if n := c.GetSpec().GetOrchestration().GetTaskHistoryRetentionLimit(); n > 0 {
		return int(n)
	}
	return DefaultTaskHistory
}

// NodeTakesNewTasks reports whether new tasks may go to n: it is READY (or
// UNKNOWN, as every node is right after a leader change until its agent
// reconnects) and ACTIVE, neither paused nor drained.
func NodeTakesNewTasks(n *api.Node) bool {
	if n == nil || n.GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_ACTIVE {
		return false
	}
	switch n.GetStatus().GetState() {
	case api.NodeState_NODE_STATE_READY, api.NodeState_NODE_STATE_UNKNOWN:
		return true
	}
	return false
}
