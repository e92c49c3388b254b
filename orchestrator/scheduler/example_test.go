package scheduler_test

import (
	"errors"
	"fmt"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/scheduler"
)

// The Control API validates a service's placement before storing it.
func ExampleParseConstraints() {
	_, err := scheduler.ParseConstraints([]string{"node.role==worker", "node.labels.zone=eu"})
	fmt.Println(err)
	fmt.Println(errors.Is(err, scheduler.ErrUnknownOperator))
	// Output:
	// constraint "node.labels.zone=eu": unknown operator (want == or !=)
	// true
}

// Plan places tasks with no I/O: three replicas on two ready nodes (one
// already busy with the service) and a drained one.
func ExamplePlan() {
	ready := func(id string, avail api.NodeAvailability) *api.Node {
		return &api.Node{
			Id:     id,
			Spec:   &api.NodeSpec{Availability: avail},
			Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_READY},
		}
	}
	nodes := []*api.Node{
		ready("a", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE),
		ready("b", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE),
		ready("c", api.NodeAvailability_NODE_AVAILABILITY_DRAIN),
	}
	replica := func(slot uint64, nodeID string, state api.TaskState) *api.Task {
		return &api.Task{
			Id: fmt.Sprintf("web.%d", slot), ServiceId: "web", Slot: slot, NodeId: nodeID,
			Spec:         &api.TaskSpec{Placement: &api.Placement{MaxReplicas: 2}},
			DesiredState: api.TaskState_TASK_STATE_RUNNING,
			Status:       &api.TaskStatus{State: state},
		}
	}
	existing := []*api.Task{replica(1, "a", api.TaskState_TASK_STATE_RUNNING)}
	pending := []*api.Task{
		replica(2, "", api.TaskState_TASK_STATE_PENDING),
		replica(3, "", api.TaskState_TASK_STATE_PENDING),
		replica(4, "", api.TaskState_TASK_STATE_PENDING),
		replica(5, "", api.TaskState_TASK_STATE_PENDING),
	}
	r := scheduler.Plan(nodes, existing, pending)
	for _, a := range r.Assigned {
		fmt.Println(a.TaskID, "→", a.NodeID)
	}
	for _, u := range r.Unplaced {
		fmt.Println(u.TaskID, u.Reason)
	}
	// Output:
	// web.2 → b
	// web.3 → a
	// web.4 → b
	// web.5 no suitable node (1 node not available for new tasks; max replicas per node limit exceed)
}
