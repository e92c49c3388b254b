package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/shoal/shoal/api"
)

func TestPlanSpreads(t *testing.T) {
	tests := []struct {
		name     string
		nodes    []*api.Node
		existing []*api.Task
		pending  []*api.Task
		want     map[string]int // new tasks per node
	}{
		{
			name:    "10 tasks on 5 nodes",
			nodes:   []*api.Node{node("n1"), node("n2"), node("n3"), node("n4"), node("n5")},
			pending: tasks("web", 10),
			want:    map[string]int{"n1": 2, "n2": 2, "n3": 2, "n4": 2, "n5": 2},
		},
		{
			name:  "existing tasks of the service are evened out",
			nodes: []*api.Node{node("n1"), node("n2"), node("n3")},
			existing: []*api.Task{
				task("web", 1, running("n1")), task("web", 2, running("n1")), task("web", 3, running("n1")),
				task("web", 4, running("n2")),
			},
			pending: []*api.Task{task("web", 5), task("web", 6), task("web", 7), task("web", 8)},
			want:    map[string]int{"n2": 2, "n3": 2},
		},
		{
			name:  "then the node with fewer tasks overall",
			nodes: []*api.Node{node("n1"), node("n2"), node("n3")},
			existing: []*api.Task{
				task("db", 1, running("n1")), task("db", 2, running("n1")),
				task("db", 3, running("n2")),
			},
			pending: tasks("web", 4),
			want:    map[string]int{"n1": 1, "n2": 1, "n3": 2},
		},
		{
			name:  "finished tasks do not count",
			nodes: []*api.Node{node("n1"), node("n2")},
			existing: []*api.Task{
				task("web", 1, running("n1"), func(t *api.Task) { t.Status.State = api.TaskState_TASK_STATE_FAILED }),
				task("web", 2, running("n1"), func(t *api.Task) { t.Status.State = api.TaskState_TASK_STATE_SHUTDOWN }),
			},
			pending: []*api.Task{task("web", 3), task("web", 4)},
			want:    map[string]int{"n1": 1, "n2": 1},
		},
		{
			// A task told to stop still runs until its agent says it
			// ended: its replacement goes elsewhere.
			name:  "stopping tasks count until they end",
			nodes: []*api.Node{node("n1"), node("n2")},
			existing: []*api.Task{
				task("web", 1, running("n1"), func(t *api.Task) { t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN }),
				task("db", 1, running("n2"), func(t *api.Task) {
					t.Status.State = api.TaskState_TASK_STATE_ASSIGNED
					t.DesiredState = api.TaskState_TASK_STATE_REMOVE
				}),
			},
			pending: []*api.Task{task("web", 2)},
			want:    map[string]int{"n2": 1},
		},
		{
			name:  "then the node with fewer stopping tasks",
			nodes: []*api.Node{node("n1"), node("n2")},
			existing: []*api.Task{
				task("db", 1, running("n1"), func(t *api.Task) { t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN }),
			},
			pending: tasks("web", 1),
			want:    map[string]int{"n2": 1},
		},
		{
			name:    "capacity fills within a pass",
			nodes:   []*api.Node{node("n1", withResources(1, 8*gib)), node("n2", withResources(3, 8*gib))},
			pending: tasks("web", 4, reserving(1, 0)),
			want:    map[string]int{"n1": 1, "n2": 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Plan(tt.nodes, tt.existing, tt.pending)
			if len(r.Unplaced) != 0 {
				t.Errorf("unplaced: %v", r.Unplaced)
			}
			if got := perNode(r); !maps.Equal(got, tt.want) {
				t.Errorf("placed %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlanPreferences(t *testing.T) {
	zoned := func(id, zone, rack string) *api.Node {
		opts := []func(*api.Node){}
		if zone != "" {
			opts = append(opts, withLabel("zone", zone))
		}
		if rack != "" {
			opts = append(opts, withLabel("rack", rack))
		}
		return node(id, opts...)
	}
	tests := []struct {
		name     string
		nodes    []*api.Node
		existing []*api.Task
		pending  []*api.Task
		groupBy  func(n *api.Node) string
		want     map[string]int // tasks (existing and new) per group
	}{
		{
			name: "even over zones, not over nodes",
			nodes: []*api.Node{
				zoned("a1", "a", ""), zoned("a2", "a", ""), zoned("a3", "a", ""), zoned("a4", "a", ""),
				zoned("b1", "b", ""),
			},
			pending: tasks("web", 6, spreadOver("node.labels.zone")),
			groupBy: func(n *api.Node) string { return n.Spec.Annotations.Labels["zone"] },
			want:    map[string]int{"a": 3, "b": 3},
		},
		{
			name: "nodes missing the label form their own group",
			nodes: []*api.Node{
				zoned("a1", "a", ""), zoned("a2", "a", ""), zoned("b1", "b", ""), zoned("x1", "", ""), zoned("x2", "", ""),
			},
			pending: tasks("web", 6, spreadOver("node.labels.zone")),
			groupBy: func(n *api.Node) string { return n.Spec.Annotations.Labels["zone"] },
			want:    map[string]int{"a": 2, "b": 2, "": 2},
		},
		{
			name:     "existing tasks count per zone",
			nodes:    []*api.Node{zoned("a1", "a", ""), zoned("a2", "a", ""), zoned("b1", "b", "")},
			existing: []*api.Task{task("web", 1, running("a1")), task("web", 2, running("a2"))},
			pending:  []*api.Task{task("web", 3, spreadOver("node.labels.zone")), task("web", 4, spreadOver("node.labels.zone"))},
			groupBy:  func(n *api.Node) string { return n.Spec.Annotations.Labels["zone"] },
			want:     map[string]int{"a": 2, "b": 2},
		},
		{
			name: "nested: zones, then racks within a zone",
			nodes: []*api.Node{
				zoned("a-r1-1", "a", "r1"), zoned("a-r1-2", "a", "r1"), zoned("a-r1-3", "a", "r1"), zoned("a-r2-1", "a", "r2"),
				zoned("b-r3-1", "b", "r3"),
			},
			pending: tasks("web", 8, spreadOver("node.labels.zone", "node.labels.rack")),
			groupBy: func(n *api.Node) string {
				return n.Spec.Annotations.Labels["zone"] + "/" + n.Spec.Annotations.Labels["rack"]
			},
			want: map[string]int{"a/r1": 2, "a/r2": 2, "b/r3": 4},
		},
		{
			name: "a full zone overflows to the others",
			nodes: []*api.Node{
				node("a1", withLabel("zone", "a"), withResources(1, 8*gib)),
				node("b1", withLabel("zone", "b")), node("b2", withLabel("zone", "b")),
			},
			pending: tasks("web", 5, spreadOver("node.labels.zone"), reserving(1, 0)),
			groupBy: func(n *api.Node) string { return n.Spec.Annotations.Labels["zone"] },
			want:    map[string]int{"a": 1, "b": 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Plan(tt.nodes, tt.existing, tt.pending)
			if len(r.Unplaced) != 0 {
				t.Fatalf("unplaced: %v", r.Unplaced)
			}
			byID := map[string]*api.Node{}
			for _, n := range tt.nodes {
				byID[n.Id] = n
			}
			got := map[string]int{}
			for _, e := range tt.existing {
				got[tt.groupBy(byID[e.NodeId])]++
			}
			for _, a := range r.Assigned {
				got[tt.groupBy(byID[a.NodeID])]++
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("tasks per group %v, want %v (placed %v)", got, tt.want, perNode(r))
			}
		})
	}
}

func TestPlanPendingReasons(t *testing.T) {
	const host = api.PortConfig_PUBLISH_MODE_HOST
	const tcp = api.PortConfig_PROTOCOL_TCP
	tests := []struct {
		name     string
		nodes    []*api.Node
		existing []*api.Task
		pending  []*api.Task
		placed   int
		reason   string // of every unplaced task
	}{
		{
			name: "down node and too small nodes",
			nodes: []*api.Node{
				node("n1", withState(api.NodeState_NODE_STATE_DOWN)),
				node("n2", withResources(1, 8*gib)), node("n3", withResources(1, 8*gib)),
			},
			pending: tasks("web", 1, reserving(2, 0)),
			reason:  "no suitable node (1 node not available for new tasks; insufficient resources on 2 nodes)",
		},
		{
			name:    "constraints",
			nodes:   []*api.Node{node("n1"), node("n2"), node("n3"), node("n4"), node("n5")},
			pending: tasks("web", 2, constrained("node.labels.zone==a")),
			reason:  "no suitable node (scheduling constraints not satisfied on 5 nodes)",
		},
		{
			name:    "unparsable constraint",
			nodes:   []*api.Node{node("n1")},
			pending: tasks("web", 1, constrained("node.zone==a")),
			reason:  `no suitable node (invalid scheduling constraints: constraint "node.zone==a": unknown attribute "node.zone" (want node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.KEY or engine.labels.KEY))`,
		},
		{
			name:    "platform",
			nodes:   []*api.Node{node("n1"), node("n2", withState(api.NodeState_NODE_STATE_DOWN))},
			pending: tasks("web", 1, onPlatforms(&api.Platform{Os: "windows"})),
			reason:  "no suitable node (1 node not available for new tasks; unsupported platform on 1 node)",
		},
		{
			name:    "the pass fills the last node",
			nodes:   []*api.Node{node("n1")},
			pending: tasks("web", 6, reserving(1, 0)),
			placed:  4,
			reason:  "no suitable node (insufficient resources on 1 node)",
		},
		{
			name:    "max replicas",
			nodes:   []*api.Node{node("n1"), node("n2")},
			pending: tasks("web", 5, maxReplicas(2)),
			placed:  4,
			reason:  "no suitable node (max replicas per node limit exceed)",
		},
		{
			name:     "host port",
			nodes:    []*api.Node{node("n1"), node("n2"), node("n3")},
			existing: []*api.Task{task("other", 1, running("n1"), publishing(host, tcp, 80))},
			pending:  tasks("web", 3, publishing(host, tcp, 80)),
			placed:   2,
			reason:   "no suitable node (host-mode port already in use on 3 nodes)",
		},
		{
			name:  "host port of a stopping task",
			nodes: []*api.Node{node("n1")},
			existing: []*api.Task{task("other", 1, running("n1"), publishing(host, tcp, 80),
				func(t *api.Task) { t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })},
			pending: tasks("web", 1, publishing(host, tcp, 80)),
			reason:  "no suitable node (host-mode port already in use on 1 node)",
		},
		{
			name:  "reservations of a stopping task",
			nodes: []*api.Node{node("n1", withResources(1, 8*gib))},
			existing: []*api.Task{task("other", 1, running("n1"), reserving(1, 0),
				func(t *api.Task) { t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })},
			pending: tasks("web", 1, reserving(1, 0)),
			reason:  "no suitable node (insufficient resources on 1 node)",
		},
		{
			name:    "no nodes",
			pending: tasks("web", 1),
			reason:  "no suitable node (no nodes in the cluster)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Plan(tt.nodes, tt.existing, tt.pending)
			if len(r.Assigned) != tt.placed {
				t.Errorf("placed %d (%v), want %d", len(r.Assigned), perNode(r), tt.placed)
			}
			if len(r.Unplaced) != len(tt.pending)-tt.placed {
				t.Fatalf("unplaced %d, want %d", len(r.Unplaced), len(tt.pending)-tt.placed)
			}
			for _, u := range r.Unplaced {
				if u.Reason != tt.reason {
					t.Errorf("task %s: reason %q, want %q", u.TaskID, u.Reason, tt.reason)
				}
			}
		})
	}
}

func TestPlanExcludesUnavailableNodes(t *testing.T) {
	tests := []struct {
		name string
		node *api.Node
	}{
		{"paused", node("n1", withAvailability(api.NodeAvailability_NODE_AVAILABILITY_PAUSE))},
		{"drained", node("n1", withAvailability(api.NodeAvailability_NODE_AVAILABILITY_DRAIN))},
		{"down", node("n1", withState(api.NodeState_NODE_STATE_DOWN))},
		{"unknown", node("n1", withState(api.NodeState_NODE_STATE_UNKNOWN))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Plan([]*api.Node{tt.node, node("n2")}, nil, tasks("web", 3))
			if got := perNode(r); !maps.Equal(got, map[string]int{"n2": 3}) {
				t.Errorf("placed %v, want all on n2", got)
			}
			r = Plan([]*api.Node{tt.node}, nil, tasks("web", 1))
			want := "no suitable node (1 node not available for new tasks)"
			if len(r.Unplaced) != 1 || r.Unplaced[0].Reason != want {
				t.Errorf("unplaced %v, want the reason %q", r.Unplaced, want)
			}
		})
	}
}

func TestPlanPresetNode(t *testing.T) {
	nodes := []*api.Node{
		node("n1"),
		node("n2"),
		node("drained", withAvailability(api.NodeAvailability_NODE_AVAILABILITY_DRAIN)),
		node("small", withResources(0.5, gib)),
		node("eu", withLabel("zone", "eu")),
	}
	existing := []*api.Task{task("db", 1, running("n1")), task("db", 2, running("n1"))}
	// One global service per case (tasks of one spec version share a spec).
	pending := []*api.Task{
		// n1 is busier than n2, but a global task goes where it was made for.
		task("a", 0, onNode("n1"), reserving(0.25, 0), constrained("node.labels.zone!=us")),
		task("b", 0, onNode("drained"), reserving(0.25, 0), constrained("node.labels.zone!=us")),
		task("c", 0, onNode("small"), reserving(1, 0)),
		task("d", 0, onNode("gone"), reserving(0.25, 0)),
		task("e", 0, onNode("eu"), constrained("node.labels.zone==us")),
	}
	r := Plan(nodes, existing, pending)
	if got := perNode(r); !maps.Equal(got, map[string]int{"n1": 1}) {
		t.Errorf("placed %v, want only the task for n1", got)
	}
	want := map[string]string{
		"b.drained": "no suitable node (1 node not available for new tasks)",
		"c.small":   "no suitable node (insufficient resources on 1 node)",
		"d.gone":    "no suitable node (node gone is not in the cluster)",
		"e.eu":      "no suitable node (scheduling constraints not satisfied on 1 node)",
	}
	if got := reasons(r); !maps.Equal(got, want) {
		t.Errorf("reasons:\n got %v\nwant %v", got, want)
	}
}

func TestPlanGroupsBySpecVersion(t *testing.T) {
	// Two spec versions of one service, each with its own reservation: the
	// filters run per version, so the smaller tasks still fit.
	nodes := []*api.Node{node("n1", withResources(2, 8*gib))}
	pending := []*api.Task{
		task("web", 1, reserving(2, 0)),
		task("web", 2, reserving(2, 0)),
		task("web", 3, reserving(0, gib), func(t *api.Task) { t.SpecVersion = 2 }),
	}
	r := Plan(nodes, nil, pending)
	var got []string
	for _, a := range r.Assigned {
		got = append(got, a.TaskID)
	}
	if want := []string{"web.1", "web.3"}; !slices.Equal(got, want) {
		t.Errorf("assigned %v, want %v", got, want)
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	var nodes []*api.Node
	for i := range 20 {
		nodes = append(nodes, node(fmt.Sprintf("n%02d", i), withLabel("zone", fmt.Sprint(i%3))))
	}
	pending := append(tasks("web", 30, spreadOver("node.labels.zone")), tasks("db", 7)...)
	first := Plan(nodes, nil, pending)
	slices.Reverse(pending)
	for range 5 {
		if again := Plan(nodes, nil, pending); !slices.Equal(first.Assigned, again.Assigned) {
			t.Fatalf("two plans of the same input differ:\n%v\n%v", first.Assigned, again.Assigned)
		}
	}
}

func TestPlanLeavesInputsAlone(t *testing.T) {
	nodes := []*api.Node{node("n1")}
	pending := tasks("web", 2)
	Plan(nodes, nil, pending)
	for _, p := range pending {
		if p.NodeId != "" || p.Status.State != api.TaskState_TASK_STATE_PENDING {
			t.Errorf("Plan changed task %s: node %q, state %v", p.Id, p.NodeId, p.Status.State)
		}
	}
}
