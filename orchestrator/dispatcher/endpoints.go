package dispatcher

// This file owns the networks' endpoint views: which tasks every node's
// overlay forwards to, and where. They derive from the store alone: a
// task's attachments are endpoints while it is RUNNING on a node that is not
// down, at that node's data-path address. Run keeps the table from its
// store watch, under d.mu, and hands each change to every Assignments
// stream; a stream's COMPLETE message carries the whole table.
//
// Changes reach each stream in commit order. A node declared down has its
// endpoints withdrawn by the commit that declares it, which comes before
// any commit giving its slots' addresses to new tasks, so every agent
// hears of the withdrawal first.

import (
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
	"github.com/shoal/shoal/orchestrator/store"
)

// epKey names an endpoint: a task's attachment to a network.
type epKey struct{ network, task string }

func (k epKey) proto() *api.EndpointKey {
	return &api.EndpointKey{NetworkId: k.network, TaskId: k.task}
}

// nodeLink is what the endpoint table needs of a node: whether it is down,
// and its VXLAN tunnel address.
type nodeLink struct {
	down bool
	vtep string
}

// endpointTable is the endpoint views of every network.
type endpointTable struct {
	eps    map[epKey]*api.Endpoint // read-only once in the table
	nodes  map[string]nodeLink
	onNode map[string]map[string]*api.Task // node ID → RUNNING tasks with attachments, by ID
}

func newEndpointTable() *endpointTable {
	return &endpointTable{eps: map[epKey]*api.Endpoint{}, nodes: map[string]nodeLink{}, onNode: map[string]map[string]*api.Task{}}
}

// epChange is one change of the table: an endpoint set, or removed (ep nil).
type epChange struct {
	key epKey
	ep  *api.Endpoint
}

// rebuild replaces the table with what tasks and nodes (read-only) make
// it; every stream is resynced after it.
func (et *endpointTable) rebuild(tasks []*api.Task, nodes []*api.Node) {
	*et = *newEndpointTable()
	for _, n := range nodes {
		et.nodes[n.Id] = linkOf(n)
	}
	for _, t := range tasks {
		et.applyTask(nil, t)
	}
}

// linkOf is n's nodeLink. Its VTEP is the data-path address it advertises,
// when that is an IPv4 address other nodes can tunnel to (not loopback); a
// node advertising none runs no overlay, and its tasks are nobody's
// endpoints: no node is told to tunnel to a node that would drop it.
func linkOf(n *api.Node) nodeLink {
	l := nodeLink{down: n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN}
	if a, err := netip.ParseAddr(n.GetDescription().GetDataPathAddr()); err == nil && a.Is4() && !a.IsLoopback() && !a.IsUnspecified() {
		l.vtep = a.String()
	}
	return l
}

// isEndpointSource says whether t's attachments are endpoints wherever its
// node stands: it is placed, runs, and is still meant to. A task the
// orchestrator is replacing (desired SHUTDOWN: its node went down, it is
// drained, updated or scaled away) is withdrawn at once: its slot's address
// may already be its successor's, and its node coming back must not
// publish it again.
func isEndpointSource(t *api.Task) bool {
	return t != nil && t.NodeId != "" && len(t.Networks) > 0 &&
		t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING &&
		t.DesiredState <= api.TaskState_TASK_STATE_RUNNING
}

// isDraining says whether t still runs but is to stop: its endpoints, if it had them, stay in
// the overlay (marked draining) until it stops, so its open connections finish.
func isDraining(t *api.Task) bool {
	return t != nil && t.NodeId != "" && len(t.Networks) > 0 &&
		t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING &&
		t.DesiredState > api.TaskState_TASK_STATE_RUNNING
}

// endpointsOf returns t's endpoints on a node linked as l: serving ones, or with draining the
// ones of a task that is to stop.
func endpointsOf(t *api.Task, l nodeLink, draining bool) map[epKey]*api.Endpoint {
	if l.down || l.vtep == "" {
		return nil
	}
	if draining {
		if !isDraining(t) {
			return nil
		}
	} else if !isEndpointSource(t) {
		return nil
	}
	eps := make(map[epKey]*api.Endpoint, len(t.Networks))
	for _, att := range t.Networks {
		p, err := netip.ParsePrefix(att.GetAddress())
		if err != nil || !p.Addr().Is4() {
			continue // not allocated yet, or not IPv4: the overlay forwards IPv4
		}
		eps[epKey{att.GetNetworkId(), t.Id}] = &api.Endpoint{
			NetworkId: att.GetNetworkId(),
			TaskId:    t.Id,
			ServiceId: t.ServiceId,
			Slot:      t.Slot,
			NodeId:    t.NodeId,
			Ip:        p.Addr().String(),
			Mac:       net.HardwareAddr(ipam.MACOf(p.Addr())).String(),
			Vtep:      l.vtep,
			Draining:  draining,
		}
	}
	return eps
}

// applyTask moves the table from old to cur (either nil: created or
// deleted) and returns its changes.
func (et *endpointTable) applyTask(old, cur *api.Task) []epChange {
	var before, after map[epKey]*api.Endpoint
	if old != nil {
		before = et.current(old)
		if m := et.onNode[old.NodeId]; m != nil {
			delete(m, old.Id)
		}
	}
	if cur != nil {
		after = endpointsOf(cur, et.nodes[cur.NodeId], false)
		if len(after) == 0 && len(before) > 0 && old.NodeId == cur.NodeId {
			// A serving task asked to stop drains: only ever from serving, so a task its
			// node's return would show again (its slot's address already a successor's) is
			// never published anew.
			after = endpointsOf(cur, et.nodes[cur.NodeId], true)
		}
		if isEndpointSource(cur) || len(after) > 0 {
			m := et.onNode[cur.NodeId]
			if m == nil {
				m = map[string]*api.Task{}
				et.onNode[cur.NodeId] = m
			}
			m[cur.Id] = cur
		}
	}
	return et.swap(before, after)
}

// applyNode follows a change of node n's record (deleted: gone) and returns
// the changes of its tasks' endpoints.
func (et *endpointTable) applyNode(n *api.Node, deleted bool) []epChange {
	old := et.nodes[n.Id]
	cur := nodeLink{down: true}
	if deleted {
		delete(et.nodes, n.Id)
	} else {
		cur = linkOf(n)
		et.nodes[n.Id] = cur
	}
	if old == cur {
		return nil
	}
	var changes []epChange
	for _, t := range et.onNode[n.Id] {
		// A draining task is only ever withdrawn here: it never comes back.
		changes = append(changes, et.swap(et.current(t), endpointsOf(t, cur, false))...)
	}
	return changes
}

// current returns the endpoints the table holds for t's attachments.
func (et *endpointTable) current(t *api.Task) map[epKey]*api.Endpoint {
	var out map[epKey]*api.Endpoint
	for _, att := range t.Networks {
		k := epKey{att.GetNetworkId(), t.Id}
		if ep, ok := et.eps[k]; ok {
			if out == nil {
				out = map[epKey]*api.Endpoint{}
			}
			out[k] = ep
		}
	}
	return out
}

// swap replaces the endpoints before with after in the table and returns
// the changes; an endpoint equal in both is no change.
func (et *endpointTable) swap(before, after map[epKey]*api.Endpoint) []epChange {
	var changes []epChange
	for k := range before {
		if _, ok := after[k]; !ok {
			if _, in := et.eps[k]; in {
				delete(et.eps, k)
				changes = append(changes, epChange{key: k})
			}
		}
	}
	for k, ep := range after {
		if have, ok := et.eps[k]; ok && sameEndpoint(have, ep) {
			continue
		}
		et.eps[k] = ep
		changes = append(changes, epChange{key: k, ep: ep})
	}
	return changes
}

func sameEndpoint(a, b *api.Endpoint) bool {
	return a.NodeId == b.NodeId && a.Ip == b.Ip && a.Mac == b.Mac && a.Vtep == b.Vtep &&
		a.ServiceId == b.ServiceId && a.Slot == b.Slot && a.Draining == b.Draining
}

// all is every endpoint, sorted by network and task.
func (et *endpointTable) all() []*api.Endpoint {
	out := make([]*api.Endpoint, 0, len(et.eps))
	for _, ep := range et.eps {
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b *api.Endpoint) int {
		if c := strings.Compare(a.NetworkId, b.NetworkId); c != 0 {
			return c
		}
		return strings.Compare(a.TaskId, b.TaskId)
	})
	return out
}

// noteEvent applies a store event to the table and returns its changes.
func (et *endpointTable) noteEvent(ev store.Event) []epChange {
	switch ev.Kind {
	case store.KindTask:
		var old, cur *api.Task
		if ev.Action == api.StoreAction_KIND_DELETE {
			old, _ = ev.Object.(*api.Task)
		} else {
			cur, _ = ev.Object.(*api.Task)
			old, _ = ev.Old.(*api.Task)
		}
		return et.applyTask(old, cur)
	case store.KindNode:
		n, _ := ev.Object.(*api.Node)
		if n == nil {
			return nil
		}
		return et.applyNode(n, ev.Action == api.StoreAction_KIND_DELETE)
	}
	return nil
}
