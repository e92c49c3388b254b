package scheduler

// This file owns choosing among the nodes that passed the filters. They are
// arranged in a tree: one level per placement preference, grouping nodes by
// the preference's value, with the nodes as leaves. Each level keeps its
// children in a heap ordered by this service's tasks, then all tasks, then
// name, so taking the best child at every level spreads tasks evenly over
// the values first and over the nodes within a value second. Without
// preferences the tree is the root over the nodes.

import (
	"container/heap"

	"github.com/shoal/shoal/api"
)

// branch is the root, a group of nodes sharing a preference value, or (a
// leaf, node set) one node.
type branch struct {
	value   string    // preference value; the node ID for a leaf
	service int       // tasks of the group's service counted in the subtree
	total   int       // all tasks counted in the subtree
	node    *nodeInfo // set for a leaf
	kids    branches  // heap, best first
	index   int       // position in the parent's heap
	byValue map[string]*branch
}

// before orders siblings: fewer tasks of the service, then fewer tasks,
// then the lower value (node ID for leaves), so the result is deterministic.
func (b *branch) before(o *branch) bool {
	if b.service != o.service {
		return b.service < o.service
	}
	if b.total != o.total {
		return b.total < o.total
	}
	return b.value < o.value
}

type branches []*branch

func (h branches) Len() int           { return len(h) }
func (h branches) Less(i, j int) bool { return h[i].before(h[j]) }
func (h branches) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *branches) Push(x any) {
	b := x.(*branch)
	b.index = len(*h)
	*h = append(*h, b)
}
func (h *branches) Pop() any {
	old := *h
	b := old[len(old)-1]
	*h = old[:len(old)-1]
	return b
}

// spread picks nodes for the tasks of one group.
type spread struct {
	root *branch
	path []*branch // root to leaf of the last best()
}

// preferences parses the spread attributes of t's placement preferences.
// One that does not parse (the Control API refuses those) groups nothing.
func preferences(t *api.Task) []attribute {
	var out []attribute
	for _, p := range t.GetSpec().GetPlacement().GetPreferences() {
		if a, err := parseSpread(p.GetSpread()); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// newSpread arranges candidates under prefs for serviceID's tasks.
func newSpread(candidates []*nodeInfo, prefs []attribute, serviceID string) *spread {
	root := &branch{}
	for _, n := range candidates {
		leaf := &branch{value: n.id, node: n, service: n.services[serviceID], total: n.tasks}
		b := root
		for _, a := range prefs {
			b.service += leaf.service
			b.total += leaf.total
			b = b.child(a.value(n.node))
		}
		b.service += leaf.service
		b.total += leaf.total
		b.kids = append(b.kids, leaf)
	}
	root.heapify()
	return &spread{root: root}
}

// child returns b's child for a preference value, creating it.
func (b *branch) child(value string) *branch {
	if b.byValue == nil {
		b.byValue = make(map[string]*branch)
	}
	c := b.byValue[value]
	if c == nil {
		c = &branch{value: value}
		b.byValue[value] = c
		b.kids = append(b.kids, c)
	}
	return c
}

func (b *branch) heapify() {
	b.byValue = nil
	for i, c := range b.kids {
		c.index = i
		c.heapify()
	}
	heap.Init(&b.kids)
}

// best returns the node the next task should go to; nil when none is left.
func (s *spread) best() *nodeInfo {
	s.path = s.path[:0]
	b := s.root
	for b.node == nil {
		if len(b.kids) == 0 {
			return nil
		}
		s.path = append(s.path, b)
		b = b.kids[0]
	}
	s.path = append(s.path, b)
	return b.node
}

// placed records a task placed on the node best returned; fits tells
// whether that node may take another task of the group.
func (s *spread) placed(fits bool) {
	for _, b := range s.path {
		b.service++
		b.total++
	}
	drop := !fits
	for i := len(s.path) - 1; i > 0; i-- {
		b, parent := s.path[i], s.path[i-1]
		if drop {
			heap.Remove(&parent.kids, b.index)
		} else {
			heap.Fix(&parent.kids, b.index)
		}
		drop = len(parent.kids) == 0
	}
}
