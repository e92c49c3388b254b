package scheduler

// This file owns the filter chain: which filters run, in which order, and
// how their rejections become the "no suitable node (...)" message of a
// task that stays pending.

import (
	"strings"

	"github.com/shoal/shoal/api"
)

// pipeline runs the filters that apply to one task group and counts, per
// filter, the nodes it was the first to reject.
type pipeline struct {
	filters  []filter
	active   []filter
	rejected []int
}

// newPipeline wires the filters. The order matters twice.
//
// A node is charged to the first filter that rejects it, so each rejection
// is explained by its most basic cause: a down or drained node is "not
// available", never also "short of memory"; a node the operator's
// constraints or platforms rule out is reported as ruled out, not as full.
// So availability comes first, then what the operator asked for
// (constraints, platform), then capacity.
//
// The capacity filters (resources, max replicas, host ports) are also the
// only ones whose answer changes as tasks are placed within a pass; placing
// re-checks the chosen node, and putting them last keeps the cheap,
// fixed-answer filters out of the way of nodes that failed early.
func newPipeline() *pipeline {
	return &pipeline{filters: []filter{
		readyFilter{},
		networkReadyFilter{},
		&constraintFilter{},
		&platformFilter{},
		&resourceFilter{},
		&maxReplicasFilter{},
		&hostPortFilter{},
	}}
}

// setTask prepares the chain for t's group and clears the counts.
func (p *pipeline) setTask(t *api.Task) {
	p.active = p.active[:0]
	for _, f := range p.filters {
		if f.SetTask(t) {
			p.active = append(p.active, f)
		}
	}
	p.resetCounts()
}

func (p *pipeline) resetCounts() {
	p.rejected = p.rejected[:0]
	for range p.active {
		p.rejected = append(p.rejected, 0)
	}
}

// check reports whether n passes every filter, counting nothing.
func (p *pipeline) check(n *nodeInfo) bool {
	for _, f := range p.active {
		if !f.Check(n) {
			return false
		}
	}
	return true
}

// process is check, counting a rejection against the filter that made it.
func (p *pipeline) process(n *nodeInfo) bool {
	for i, f := range p.active {
		if !f.Check(n) {
			p.rejected[i]++
			return false
		}
	}
	return true
}

// explain words the counted rejections: "no suitable node (1 node not
// available for new tasks; insufficient resources on 2 nodes)".
func (p *pipeline) explain() string {
	var parts []string
	for i, f := range p.active {
		if p.rejected[i] > 0 {
			parts = append(parts, f.Explain(p.rejected[i]))
		}
	}
	if len(parts) == 0 {
		return noSuitableNode + " (no nodes in the cluster)"
	}
	return noSuitableNode + " (" + strings.Join(parts, "; ") + ")"
}

const noSuitableNode = "no suitable node"
