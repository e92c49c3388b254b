package scheduler

// This file owns the filters: each decides for one task group whether a node
// may take one more of its tasks, and words its rejections. They know
// nothing of each other; pipeline.go chains them and counts the rejections.

import (
	"fmt"

	"github.com/shoal/shoal/api"
)

// filter is one test a node must pass to take a task.
type filter interface {
	// SetTask prepares the filter for the tasks of t's group (same service,
	// same spec version) and reports whether it applies to them at all.
	SetTask(t *api.Task) bool
	// Check reports whether n may take one more task of the group.
	Check(n *nodeInfo) bool
	// Explain words the filter's rejection of nRejected nodes.
	Explain(nRejected int) string
}

// nodes words a count of nodes: "1 node", "3 nodes".
func nodes(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

// readyFilter passes nodes that are up (READY) and take new tasks (ACTIVE:
// a paused node keeps its tasks and a drained one loses them, neither gets
// new ones).
type readyFilter struct{}

func (readyFilter) SetTask(*api.Task) bool { return true }

func (readyFilter) Check(n *nodeInfo) bool { return takesNewTasks(n.node) }

// takesNewTasks is the readiness rule, also applied to a node as the
// store has it when a pass commits (commit.go).
func takesNewTasks(n *api.Node) bool {
	return n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY &&
		n.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
}

func (readyFilter) Explain(k int) string { return nodes(k) + " not available for new tasks" }

// networkReadyFilter passes nodes whose network plugins report they can attach tasks (their CNI
// STATUS, which the agent reports in the node's description).
type networkReadyFilter struct{}

func (networkReadyFilter) SetTask(*api.Task) bool { return true }

func (networkReadyFilter) Check(n *nodeInfo) bool { return networkReady(n.node) }

// networkReady is the network half of the readiness rule, also applied at commit (commit.go).
func networkReady(n *api.Node) bool { return n.GetDescription().GetNetworkNotReady() == "" }

func (networkReadyFilter) Explain(k int) string {
	return nodes(k) + " with network plugins not ready"
}

// constraintFilter passes nodes that satisfy every placement constraint. A
// group whose constraints do not parse matches no node, and says why.
type constraintFilter struct {
	constraints []Constraint
	err         error
}

func (f *constraintFilter) SetTask(t *api.Task) bool {
	exprs := t.GetSpec().GetPlacement().GetConstraints()
	f.constraints, f.err = ParseConstraints(exprs)
	return len(exprs) > 0
}

func (f *constraintFilter) Check(n *nodeInfo) bool {
	return f.err == nil && MatchAll(f.constraints, n.node)
}

func (f *constraintFilter) Explain(k int) string {
	if f.err != nil {
		return "invalid scheduling constraints: " + f.err.Error()
	}
	return "scheduling constraints not satisfied on " + nodes(k)
}

// platformFilter passes nodes whose OS and architecture match one of the
// task's platforms; an empty field of a platform matches anything.
type platformFilter struct {
	platforms []*api.Platform
}

func (f *platformFilter) SetTask(t *api.Task) bool {
	f.platforms = t.GetSpec().GetPlacement().GetPlatforms()
	return len(f.platforms) > 0
}

func (f *platformFilter) Check(n *nodeInfo) bool {
	os := attribute{kind: attrOS}
	arch := attribute{kind: attrArch}
	for _, p := range f.platforms {
		if (p.GetOs() == "" || os.equal(os.value(n.node), p.GetOs())) &&
			(p.GetArch() == "" || arch.equal(arch.value(n.node), p.GetArch())) {
			return true
		}
	}
	return false
}

func (f *platformFilter) Explain(k int) string { return "unsupported platform on " + nodes(k) }

// resourceFilter passes nodes with room for the task's reservations: what
// the node offers minus what the tasks counted on it reserve.
type resourceFilter struct {
	nanoCPUs, memory int64
}

func (f *resourceFilter) SetTask(t *api.Task) bool {
	r := t.GetSpec().GetResources().GetReservations()
	f.nanoCPUs, f.memory = r.GetNanoCpus(), r.GetMemoryBytes()
	return f.nanoCPUs > 0 || f.memory > 0
}

func (f *resourceFilter) Check(n *nodeInfo) bool {
	offer := n.node.GetDescription().GetResources()
	return offer.GetNanoCpus()-n.nanoCPUs >= f.nanoCPUs && offer.GetMemoryBytes()-n.memory >= f.memory
}

func (f *resourceFilter) Explain(k int) string { return "insufficient resources on " + nodes(k) }

// maxReplicasFilter passes nodes holding fewer than placement.max_replicas
// tasks of the service.
type maxReplicasFilter struct {
	serviceID string
	max       uint64
}

func (f *maxReplicasFilter) SetTask(t *api.Task) bool {
	f.serviceID, f.max = t.ServiceId, t.GetSpec().GetPlacement().GetMaxReplicas()
	return f.max > 0
}

func (f *maxReplicasFilter) Check(n *nodeInfo) bool {
	return uint64(n.services[f.serviceID]) < f.max
}

// Explain keeps docker's wording, which scripts match on.
func (f *maxReplicasFilter) Explain(int) string { return "max replicas per node limit exceed" }

// hostPortFilter passes nodes where none of the task's host-mode published
// ports is taken by a task counted there.
type hostPortFilter struct {
	ports []hostPort
}

func (f *hostPortFilter) SetTask(t *api.Task) bool {
	f.ports = hostPorts(t)
	return len(f.ports) > 0
}

func (f *hostPortFilter) Check(n *nodeInfo) bool {
	for _, p := range f.ports {
		if n.ports[p] > 0 {
			return false
		}
	}
	return true
}

func (f *hostPortFilter) Explain(k int) string { return "host-mode port already in use on " + nodes(k) }
