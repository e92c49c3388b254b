package controlapi

// This file owns the task RPCs: listing tasks with filters, in the order
// operators read them (by service, slot or node, newest first), and getting
// one task. Tasks are written by the reconcilers, the scheduler and the
// dispatcher, never here.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// ListTasks returns the tasks every given filter matches, sorted by service
// name, then slot (node for a global service's tasks), then newest first.
func (s *Server) ListTasks(ctx context.Context, req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	states := make(map[api.TaskState]bool, len(req.DesiredStates))
	for i, st := range req.DesiredStates {
		if _, ok := api.TaskState_name[int32(st)]; !ok {
			return nil, invalid(fmt.Sprintf("desired_states[%d]", i), "%d is not a task state", st)
		}
		states[st] = true
	}
	serviceIDs, err := resolveFilter(ctx, "service_ids", "a service", req.ServiceIds, s.serviceID)
	if err != nil {
		return nil, err
	}
	nodeIDs, err := resolveFilter(ctx, "node_ids", "a node", req.NodeIds, s.nodeID)
	if err != nil {
		return nil, err
	}
	var tasks []*api.Task
	err = s.store.ViewLinearizable(ctx, func(tx store.ReadTx) {
		if len(serviceIDs) == 0 {
			tasks = tx.Tasks()
			return
		}
		for id := range serviceIDs {
			tasks = append(tasks, tx.TasksByService(id)...)
		}
	})
	if err != nil {
		return nil, toStatus(err)
	}
	tasks = slices.DeleteFunc(tasks, func(t *api.Task) bool {
		return (len(nodeIDs) > 0 && !nodeIDs[t.NodeId]) || (len(states) > 0 && !states[t.DesiredState])
	})
	slices.SortFunc(tasks, compareTasks)
	return &api.ListTasksResponse{Tasks: tasks}, nil
}

// compareTasks orders tasks as listings show them: by service name, then
// slot, then node (global services' tasks have slot 0), newest first
// within one slot or node.
func compareTasks(a, b *api.Task) int {
	if c := cmp.Or(
		strings.Compare(a.ServiceName, b.ServiceName),
		strings.Compare(a.ServiceId, b.ServiceId),
		cmp.Compare(a.Slot, b.Slot),
	); c != 0 {
		return c
	}
	if a.Slot == 0 {
		if c := strings.Compare(a.NodeId, b.NodeId); c != 0 {
			return c
		}
	}
	// Newest first.
	if c := a.GetMeta().GetCreatedAt().AsTime().Compare(b.GetMeta().GetCreatedAt().AsTime()); c != 0 {
		return -c
	}
	return strings.Compare(a.Id, b.Id)
}

// GetTask returns one task, named by ID or unique ID prefix.
func (s *Server) GetTask(ctx context.Context, req *api.GetTaskRequest) (*api.GetTaskResponse, error) {
	ref := req.GetTaskId()
	if ref == "" {
		return nil, invalid("task_id", "must name a task")
	}
	var (
		t       *api.Task
		pickErr error
	)
	err := s.store.ViewLinearizable(ctx, func(tx store.ReadTx) {
		// Most references are whole IDs: look those up without a scan.
		if t = tx.Task(ref); t == nil {
			t, pickErr = pick("task", ref, tx.Tasks(), nil)
		}
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if pickErr != nil {
		return nil, pickErr
	}
	return &api.GetTaskResponse{Task: t}, nil
}
