package scheduler

// This file owns the scheduler's picture of the cluster: per node, the node
// record and what its tasks take (reservations, host ports, tasks per
// service), and the set of tasks waiting for a node. Run keeps one view up
// to date from store events; Plan builds a throwaway one from its inputs.
// Placing a task in a pass updates the view at once (assume), so the next
// placement of the same pass sees it.

import "github.com/shoal/shoal/api"

// hostPort is a port published in host mode on a node.
type hostPort struct {
	protocol api.PortConfig_Protocol
	port     uint32
}

// usage is what one task takes from the node it counts against.
type usage struct {
	nodeID    string
	serviceID string
	nanoCPUs  int64
	memory    int64
	ports     []hostPort // shared between the tasks of a group: read-only
}

// usageOf reads what t takes from a node. Its node is t's own.
func usageOf(t *api.Task) usage {
	r := t.GetSpec().GetResources().GetReservations()
	return usage{
		nodeID:    t.NodeId,
		serviceID: t.ServiceId,
		nanoCPUs:  r.GetNanoCpus(),
		memory:    r.GetMemoryBytes(),
		ports:     hostPorts(t),
	}
}

// hostPorts lists the ports t publishes in host mode on a fixed port.
func hostPorts(t *api.Task) []hostPort {
	var out []hostPort
	for _, p := range t.GetEndpoint().GetPorts() {
		if p.GetPublishMode() == api.PortConfig_PUBLISH_MODE_HOST && p.GetPublishedPort() != 0 {
			out = append(out, hostPort{p.GetProtocol(), p.GetPublishedPort()})
		}
	}
	return out
}

// schedulable reports whether t waits for the scheduler.
func schedulable(t *api.Task) bool {
	return t.GetStatus().GetState() == api.TaskState_TASK_STATE_PENDING &&
		t.DesiredState == api.TaskState_TASK_STATE_RUNNING
}

// countsOnNode reports whether t takes room on its node: it has one and
// was handed to the node without having ended, whatever its desired state.
// A task told to stop still runs (holds its memory, binds its host ports)
// until its agent reports it ended; releasing its room earlier would let
// its replacement be placed beside it, overcommitted or on a taken port.
func countsOnNode(t *api.Task) bool {
	s := t.GetStatus().GetState()
	return t.NodeId != "" && s >= api.TaskState_TASK_STATE_ASSIGNED && s <= api.TaskState_TASK_STATE_RUNNING
}

// nodeInfo is one node and what the tasks counted on it take. node is nil
// while tasks name a node the store has no record of.
type nodeInfo struct {
	id       string
	node     *api.Node // shared with the store or the caller: read-only
	tasks    int
	services map[string]int
	nanoCPUs int64 // reserved
	memory   int64 // reserved
	ports    map[hostPort]int
}

func (n *nodeInfo) add(u usage) {
	n.tasks++
	n.services[u.serviceID]++
	n.nanoCPUs += u.nanoCPUs
	n.memory += u.memory
	for _, p := range u.ports {
		n.ports[p]++
	}
}

func (n *nodeInfo) remove(u usage) {
	n.tasks--
	if n.services[u.serviceID]--; n.services[u.serviceID] <= 0 {
		delete(n.services, u.serviceID)
	}
	n.nanoCPUs -= u.nanoCPUs
	n.memory -= u.memory
	for _, p := range u.ports {
		if n.ports[p]--; n.ports[p] <= 0 {
			delete(n.ports, p)
		}
	}
}

// view is the cluster as the scheduler sees it.
type view struct {
	nodes   map[string]*nodeInfo
	counted map[string]usage     // tasks counted on a node, by task ID
	pending map[string]*api.Task // schedulable tasks, by ID; read-only
}

func newView() *view {
	return &view{
		nodes:   make(map[string]*nodeInfo),
		counted: make(map[string]usage),
		pending: make(map[string]*api.Task),
	}
}

// nodeInfo returns the info of a node ID, creating an empty one.
func (v *view) nodeInfo(id string) *nodeInfo {
	n := v.nodes[id]
	if n == nil {
		n = &nodeInfo{id: id, services: make(map[string]int), ports: make(map[hostPort]int)}
		v.nodes[id] = n
	}
	return n
}

// setNode records a node's new state; n is kept, not copied.
func (v *view) setNode(n *api.Node) { v.nodeInfo(n.Id).node = n }

// removeNode forgets a node record; tasks still counted on it keep its
// counters until they leave.
func (v *view) removeNode(id string) {
	n := v.nodes[id]
	if n == nil {
		return
	}
	n.node = nil
	if n.tasks == 0 {
		delete(v.nodes, id)
	}
}

// setTask records a task's new state; t is kept, not copied. It reports
// whether the change may let a pending task be placed: a task became
// schedulable (or changed how), or a node got room back.
func (v *view) setTask(t *api.Task) bool {
	prev, wasPending := v.pending[t.Id]
	prevUse, wasCounted := v.counted[t.Id]
	v.removeTask(t.Id)
	switch {
	case schedulable(t):
		v.pending[t.Id] = t
		return !wasPending || prev.NodeId != t.NodeId || prev.SpecVersion != t.SpecVersion
	case countsOnNode(t):
		u := usageOf(t)
		v.counted[t.Id] = u
		v.nodeInfo(u.nodeID).add(u)
		return wasCounted && (prevUse.nodeID != u.nodeID || prevUse.nanoCPUs > u.nanoCPUs || prevUse.memory > u.memory)
	}
	return wasCounted
}

// removeTask forgets a task; it reports whether a node got room back.
func (v *view) removeTask(id string) bool {
	delete(v.pending, id)
	u, ok := v.counted[id]
	if !ok {
		return false
	}
	delete(v.counted, id)
	n := v.nodes[u.nodeID]
	n.remove(u)
	if n.node == nil && n.tasks == 0 {
		delete(v.nodes, u.nodeID)
	}
	return true
}

// assume counts a pending task on the node the scheduler chose, before the
// store says so. u carries the task's group usage; its node is set here.
func (v *view) assume(t *api.Task, n *nodeInfo, u usage) {
	delete(v.pending, t.Id)
	u.nodeID = n.id
	v.counted[t.Id] = u
	n.add(u)
}

// pendingTasks lists the schedulable tasks, in no particular order.
func (v *view) pendingTasks() []*api.Task {
	out := make([]*api.Task, 0, len(v.pending))
	for _, t := range v.pending {
		out = append(out, t)
	}
	return out
}
