package scheduler

// Builders of nodes and tasks for the tests, and a way to wait on the store.

import (
	"fmt"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
)

const gib = 1 << 30

// node returns a READY, ACTIVE linux/amd64 worker with 4 CPUs and 8 GiB.
func node(id string, opts ...func(*api.Node)) *api.Node {
	n := &api.Node{
		Id:   id,
		Spec: &api.NodeSpec{Annotations: &api.Annotations{Name: id}},
		Description: &api.NodeDescription{
			Hostname:  "host-" + id,
			Os:        "linux",
			Arch:      "x86_64",
			Resources: &api.Resources{NanoCpus: 4e9, MemoryBytes: 8 * gib},
		},
		Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_READY},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func withLabel(k, v string) func(*api.Node) {
	return func(n *api.Node) {
		if n.Spec.Annotations.Labels == nil {
			n.Spec.Annotations.Labels = map[string]string{}
		}
		n.Spec.Annotations.Labels[k] = v
	}
}

func withEngineLabel(k, v string) func(*api.Node) {
	return func(n *api.Node) {
		if n.Description.EngineLabels == nil {
			n.Description.EngineLabels = map[string]string{}
		}
		n.Description.EngineLabels[k] = v
	}
}

func withAvailability(a api.NodeAvailability) func(*api.Node) {
	return func(n *api.Node) { n.Spec.Availability = a }
}

func withNetworkNotReady(why string) func(*api.Node) {
	return func(n *api.Node) {
		if n.Description == nil {
			n.Description = &api.NodeDescription{}
		}
		n.Description.NetworkNotReady = why
	}
}

func withState(s api.NodeState) func(*api.Node) {
	return func(n *api.Node) { n.Status.State = s }
}

func withResources(cpus float64, mem int64) func(*api.Node) {
	return func(n *api.Node) {
		n.Description.Resources = &api.Resources{NanoCpus: int64(cpus * 1e9), MemoryBytes: mem}
	}
}

func withPlatform(os, arch string) func(*api.Node) {
	return func(n *api.Node) { n.Description.Os, n.Description.Arch = os, arch }
}

func asManager(n *api.Node) { n.Role = api.NodeRole_NODE_ROLE_MANAGER }

// task returns a task of service at slot, PENDING and desired RUNNING.
func task(service string, slot uint64, opts ...func(*api.Task)) *api.Task {
	t := &api.Task{
		Id:           fmt.Sprintf("%s.%d", service, slot),
		ServiceId:    service,
		ServiceName:  service,
		Slot:         slot,
		SpecVersion:  1,
		Spec:         &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}, Placement: &api.Placement{}},
		DesiredState: api.TaskState_TASK_STATE_RUNNING,
		Status:       &api.TaskStatus{State: api.TaskState_TASK_STATE_PENDING, Message: api.TaskMessagePendingScheduling},
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// tasks returns n pending tasks of service, slots 1..n.
func tasks(service string, n int, opts ...func(*api.Task)) []*api.Task {
	out := make([]*api.Task, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, task(service, uint64(i), opts...))
	}
	return out
}

// running puts a task on a node, observed RUNNING.
func running(nodeID string) func(*api.Task) {
	return func(t *api.Task) {
		t.NodeId = nodeID
		t.Status.State = api.TaskState_TASK_STATE_RUNNING
	}
}

// onNode presets a pending task's node, as the global reconciler does.
func onNode(nodeID string) func(*api.Task) {
	return func(t *api.Task) { t.NodeId = nodeID; t.Slot = 0; t.Id = t.ServiceId + "." + nodeID }
}

func reserving(cpus float64, mem int64) func(*api.Task) {
	return func(t *api.Task) {
		t.Spec.Resources = &api.ResourceRequirements{Reservations: &api.Resources{NanoCpus: int64(cpus * 1e9), MemoryBytes: mem}}
	}
}

func constrained(exprs ...string) func(*api.Task) {
	return func(t *api.Task) { t.Spec.Placement.Constraints = exprs }
}

func spreadOver(attrs ...string) func(*api.Task) {
	return func(t *api.Task) {
		for _, a := range attrs {
			t.Spec.Placement.Preferences = append(t.Spec.Placement.Preferences, &api.PlacementPreference{Spread: a})
		}
	}
}

func maxReplicas(n uint64) func(*api.Task) {
	return func(t *api.Task) { t.Spec.Placement.MaxReplicas = n }
}

func publishing(mode api.PortConfig_PublishMode, proto api.PortConfig_Protocol, port uint32) func(*api.Task) {
	return func(t *api.Task) {
		if t.Endpoint == nil {
			t.Endpoint = &api.EndpointSpec{}
		}
		t.Endpoint.Ports = append(t.Endpoint.Ports, &api.PortConfig{
			Protocol: proto, TargetPort: 80, PublishedPort: port, PublishMode: mode,
		})
	}
}

func onPlatforms(ps ...*api.Platform) func(*api.Task) {
	return func(t *api.Task) { t.Spec.Placement.Platforms = ps }
}

// perNode counts a result's assignments by node.
func perNode(r Result) map[string]int {
	out := map[string]int{}
	for _, a := range r.Assigned {
		out[a.NodeID]++
	}
	return out
}

// reasons maps each unplaced task to its reason.
func reasons(r Result) map[string]string {
	out := map[string]string{}
	for _, u := range r.Unplaced {
		out[u.TaskID] = u.Reason
	}
	return out
}

// create writes objects to the store in one transaction; waitFor blocks
// until a condition holds on the store, re-checking after every committed
// batch (its deadline only guards against a hang).
var (
	create  = reconciletest.Create
	waitFor = reconciletest.WaitFor
)
