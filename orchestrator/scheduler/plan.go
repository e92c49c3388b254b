package scheduler

// This file owns one scheduling pass as a pure decision: group the pending
// tasks, filter the nodes once per group, place the group's tasks one by one
// and explain the ones left over. It does no I/O; Plan exposes it for
// benchmarks and simulations, and Run calls the same view.plan.

import (
	"cmp"
	"slices"

	"github.com/shoal/shoal/api"
)

// Result is what a pass decided.
type Result struct {
	// Assigned lists the tasks given a node, in the order they were placed.
	Assigned []Assignment
	// Unplaced lists the tasks no node can take, each with the status
	// message that says why.
	Unplaced []Unplaced
}

// Assignment is a task and the node it goes to.
type Assignment struct {
	TaskID string
	NodeID string
}

// Unplaced is a task left pending and the reason, in docker's words.
type Unplaced struct {
	TaskID string
	Reason string
}

// Plan decides where the pending tasks go. nodes are the cluster's nodes;
// existing are the other tasks, of which those on a node and observed
// ASSIGNED to RUNNING take room there, also when told to stop (the rest are
// ignored); pending are the tasks to place, PENDING and desired RUNNING,
// with a node set for those that may only go there. Plan neither changes
// nor keeps its arguments.
func Plan(nodes []*api.Node, existing []*api.Task, pending []*api.Task) Result {
	v := newView()
	v.counted = make(map[string]usage, len(existing)+len(pending))
	for _, n := range nodes {
		v.setNode(n)
	}
	for _, t := range existing {
		if countsOnNode(t) {
			v.setTask(t)
		}
	}
	return v.plan(pending)
}

// group is the pending tasks of one service at one spec version: they
// share their spec, so one filter run per node serves them all.
type group struct {
	serviceID   string
	specVersion uint64
	preset      []*api.Task // node already chosen (global services)
	free        []*api.Task
}

// first is a task of the group, standing for all of them.
func (g *group) first() *api.Task {
	if len(g.preset) > 0 {
		return g.preset[0]
	}
	return g.free[0]
}

// plan places pending on v's nodes, counting each placement in v as it is
// made, and returns the decisions.
func (v *view) plan(pending []*api.Task) Result {
	res := Result{Assigned: make([]Assignment, 0, len(pending))}
	p := newPipeline()
	for _, g := range groupTasks(pending) {
		t := g.first()
		p.setTask(t)
		u := usageOf(t)
		v.placePreset(p, g.preset, u, &res)
		v.placeFree(p, g.free, u, &res)
	}
	return res
}

// groupTasks groups tasks by (service, spec version) and orders groups and
// tasks (by slot, then node, then ID) so a pass is deterministic.
func groupTasks(tasks []*api.Task) []*group {
	type key struct {
		service string
		version uint64
	}
	byKey := make(map[key]*group)
	var groups []*group
	for _, t := range tasks {
		k := key{t.ServiceId, t.SpecVersion}
		g := byKey[k]
		if g == nil {
			g = &group{serviceID: t.ServiceId, specVersion: t.SpecVersion}
			byKey[k] = g
			groups = append(groups, g)
		}
		if t.NodeId != "" {
			g.preset = append(g.preset, t)
		} else {
			g.free = append(g.free, t)
		}
	}
	slices.SortFunc(groups, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.serviceID, b.serviceID), cmp.Compare(a.specVersion, b.specVersion))
	})
	byTask := func(a, b *api.Task) int {
		return cmp.Or(cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.NodeId, b.NodeId), cmp.Compare(a.Id, b.Id))
	}
	for _, g := range groups {
		slices.SortFunc(g.preset, byTask)
		slices.SortFunc(g.free, byTask)
	}
	return groups
}

// placePreset admits each task to the node it names, or explains why not.
func (v *view) placePreset(p *pipeline, tasks []*api.Task, u usage, res *Result) {
	for _, t := range tasks {
		n := v.nodes[t.NodeId]
		if n == nil || n.node == nil {
			res.Unplaced = append(res.Unplaced, Unplaced{t.Id, noSuitableNode + " (node " + t.NodeId + " is not in the cluster)"})
			continue
		}
		p.resetCounts()
		if !p.process(n) {
			res.Unplaced = append(res.Unplaced, Unplaced{t.Id, p.explain()})
			continue
		}
		v.assume(t, n, u)
		res.Assigned = append(res.Assigned, Assignment{t.Id, n.id})
	}
}

// placeFree filters every node once for the group, then hands the tasks
// out one by one to the best candidate, re-checking only the node that
// took a task. Tasks left when no candidate remains are explained by
// filtering every node again, now that the pass has filled some.
func (v *view) placeFree(p *pipeline, tasks []*api.Task, u usage, res *Result) {
	if len(tasks) == 0 {
		return
	}
	var candidates []*nodeInfo
	for _, n := range v.nodes {
		if n.node != nil && p.check(n) {
			candidates = append(candidates, n)
		}
	}
	s := newSpread(candidates, preferences(tasks[0]), tasks[0].ServiceId)
	for i, t := range tasks {
		n := s.best()
		if n == nil {
			reason := v.explain(p)
			for _, t := range tasks[i:] {
				res.Unplaced = append(res.Unplaced, Unplaced{t.Id, reason})
			}
			return
		}
		v.assume(t, n, u)
		res.Assigned = append(res.Assigned, Assignment{t.Id, n.id})
		s.placed(p.check(n))
	}
}

// explain filters every node, counting rejections, and words them.
func (v *view) explain(p *pipeline) string {
	p.resetCounts()
	for _, n := range v.nodes {
		if n.node != nil {
			p.process(n)
		}
	}
	return p.explain()
}
