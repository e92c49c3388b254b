package scheduler

import (
	"testing"

	"github.com/shoal/shoal/api"
)

// TestFilters checks each filter alone: whether it applies to a task, how
// it judges one node (with the tasks already counted there), and how it
// words the rejection of two nodes.
func TestFilters(t *testing.T) {
	const (
		tcp  = api.PortConfig_PROTOCOL_TCP
		udp  = api.PortConfig_PROTOCOL_UDP
		host = api.PortConfig_PUBLISH_MODE_HOST
	)
	tests := []struct {
		name     string
		filter   filter
		node     *api.Node
		existing []*api.Task
		task     *api.Task
		applies  bool
		pass     bool
		explain  string
	}{
		{name: "ready: ready and active", filter: readyFilter{}, node: node("n1"), task: task("s", 1),
			applies: true, pass: true, explain: "2 nodes not available for new tasks"},
		{name: "ready: down", filter: readyFilter{}, node: node("n1", withState(api.NodeState_NODE_STATE_DOWN)), task: task("s", 1),
			applies: true, pass: false, explain: "2 nodes not available for new tasks"},
		{name: "ready: unknown", filter: readyFilter{}, node: node("n1", withState(api.NodeState_NODE_STATE_UNKNOWN)), task: task("s", 1),
			applies: true, pass: false, explain: "2 nodes not available for new tasks"},
		{name: "ready: disconnected", filter: readyFilter{}, node: node("n1", withState(api.NodeState_NODE_STATE_DISCONNECTED)), task: task("s", 1),
			applies: true, pass: false, explain: "2 nodes not available for new tasks"},
		{name: "ready: paused", filter: readyFilter{}, node: node("n1", withAvailability(api.NodeAvailability_NODE_AVAILABILITY_PAUSE)), task: task("s", 1),
			applies: true, pass: false, explain: "2 nodes not available for new tasks"},
		{name: "ready: drained", filter: readyFilter{}, node: node("n1", withAvailability(api.NodeAvailability_NODE_AVAILABILITY_DRAIN)), task: task("s", 1),
			applies: true, pass: false, explain: "2 nodes not available for new tasks"},
		{name: "network ready", filter: networkReadyFilter{}, node: node("n1"), task: task("s", 1),
			applies: true, pass: true, explain: "2 nodes with network plugins not ready"},
		{name: "network not ready", filter: networkReadyFilter{}, node: node("n1", withNetworkNotReady("shoal-bridge: no iptables")), task: task("s", 1),
			applies: true, pass: false, explain: "2 nodes with network plugins not ready"},

		{name: "constraints: none", filter: &constraintFilter{}, node: node("n1"), task: task("s", 1),
			applies: false, pass: true, explain: "scheduling constraints not satisfied on 2 nodes"},
		{name: "constraints: all hold", filter: &constraintFilter{}, node: node("n1", withLabel("zone", "a")),
			task:    task("s", 1, constrained("node.labels.zone==a", "node.role==worker")),
			applies: true, pass: true, explain: "scheduling constraints not satisfied on 2 nodes"},
		{name: "constraints: one fails", filter: &constraintFilter{}, node: node("n1", withLabel("zone", "a")),
			task:    task("s", 1, constrained("node.labels.zone==a", "node.role==manager")),
			applies: true, pass: false, explain: "scheduling constraints not satisfied on 2 nodes"},
		{name: "constraints: unparsable", filter: &constraintFilter{}, node: node("n1"),
			task:    task("s", 1, constrained("node.id=n1")),
			applies: true, pass: false,
			explain: `invalid scheduling constraints: constraint "node.id=n1": unknown operator (want == or !=)`},

		{name: "platform: none asked", filter: &platformFilter{}, node: node("n1"), task: task("s", 1),
			applies: false, pass: true, explain: "unsupported platform on 2 nodes"},
		{name: "platform: os and normalized arch", filter: &platformFilter{}, node: node("n1", withPlatform("linux", "aarch64")),
			task:    task("s", 1, onPlatforms(&api.Platform{Os: "windows"}, &api.Platform{Os: "linux", Arch: "arm64"})),
			applies: true, pass: true, explain: "unsupported platform on 2 nodes"},
		{name: "platform: arch only", filter: &platformFilter{}, node: node("n1"),
			task:    task("s", 1, onPlatforms(&api.Platform{Arch: "amd64"})),
			applies: true, pass: true, explain: "unsupported platform on 2 nodes"},
		{name: "platform: mismatch", filter: &platformFilter{}, node: node("n1"),
			task:    task("s", 1, onPlatforms(&api.Platform{Os: "linux", Arch: "arm64"})),
			applies: true, pass: false, explain: "unsupported platform on 2 nodes"},

		{name: "resources: none reserved", filter: &resourceFilter{}, node: node("n1", withResources(0, 0)), task: task("s", 1),
			applies: false, pass: true, explain: "insufficient resources on 2 nodes"},
		{name: "resources: fits exactly", filter: &resourceFilter{}, node: node("n1"),
			existing: []*api.Task{task("other", 1, running("n1"), reserving(3, 4*gib))},
			task:     task("s", 1, reserving(1, 4*gib)),
			applies:  true, pass: true, explain: "insufficient resources on 2 nodes"},
		{name: "resources: short of CPU", filter: &resourceFilter{}, node: node("n1"),
			existing: []*api.Task{task("other", 1, running("n1"), reserving(3.5, 0))},
			task:     task("s", 1, reserving(1, 0)),
			applies:  true, pass: false, explain: "insufficient resources on 2 nodes"},
		{name: "resources: short of memory", filter: &resourceFilter{}, node: node("n1"),
			task:    task("s", 1, reserving(0, 9*gib)),
			applies: true, pass: false, explain: "insufficient resources on 2 nodes"},
		{name: "resources: finished tasks free their room", filter: &resourceFilter{}, node: node("n1"),
			existing: []*api.Task{
				task("other", 1, running("n1"), reserving(4, 0), func(t *api.Task) { t.Status.State = api.TaskState_TASK_STATE_FAILED }),
				task("other", 2, running("n1"), reserving(4, 0), func(t *api.Task) {
					t.Status.State = api.TaskState_TASK_STATE_SHUTDOWN
					t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
				}),
			},
			task:    task("s", 1, reserving(4, 0)),
			applies: true, pass: true, explain: "insufficient resources on 2 nodes"},
		{name: "resources: a stopping task keeps its room until it ends", filter: &resourceFilter{}, node: node("n1"),
			existing: []*api.Task{
				task("other", 1, running("n1"), reserving(4, 0), func(t *api.Task) { t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN }),
			},
			task:    task("s", 1, reserving(1, 0)),
			applies: true, pass: false, explain: "insufficient resources on 2 nodes"},
		{name: "resources: node offers nothing", filter: &resourceFilter{}, node: node("n1", func(n *api.Node) { n.Description.Resources = nil }),
			task:    task("s", 1, reserving(0.5, 0)),
			applies: true, pass: false, explain: "insufficient resources on 2 nodes"},

		{name: "max replicas: no cap", filter: &maxReplicasFilter{}, node: node("n1"), task: task("s", 9),
			existing: []*api.Task{task("s", 1, running("n1"))},
			applies:  false, pass: true, explain: "max replicas per node limit exceed"},
		{name: "max replicas: under the cap", filter: &maxReplicasFilter{}, node: node("n1"), task: task("s", 9, maxReplicas(2)),
			existing: []*api.Task{task("s", 1, running("n1")), task("other", 1, running("n1"))},
			applies:  true, pass: true, explain: "max replicas per node limit exceed"},
		{name: "max replicas: at the cap", filter: &maxReplicasFilter{}, node: node("n1"), task: task("s", 9, maxReplicas(2)),
			existing: []*api.Task{task("s", 1, running("n1")), task("s", 2, running("n1"))},
			applies:  true, pass: false, explain: "max replicas per node limit exceed"},

		{name: "host ports: ingress only", filter: &hostPortFilter{}, node: node("n1"),
			existing: []*api.Task{task("other", 1, running("n1"), publishing(host, tcp, 8080))},
			task:     task("s", 1, publishing(api.PortConfig_PUBLISH_MODE_INGRESS, tcp, 8080)),
			applies:  false, pass: true, explain: "host-mode port already in use on 2 nodes"},
		{name: "host ports: dynamic port", filter: &hostPortFilter{}, node: node("n1"),
			task:    task("s", 1, publishing(host, tcp, 0)),
			applies: false, pass: true, explain: "host-mode port already in use on 2 nodes"},
		{name: "host ports: taken", filter: &hostPortFilter{}, node: node("n1"),
			existing: []*api.Task{task("other", 1, running("n1"), publishing(host, tcp, 8080))},
			task:     task("s", 1, publishing(host, tcp, 8080)),
			applies:  true, pass: false, explain: "host-mode port already in use on 2 nodes"},
		{name: "host ports: other protocol", filter: &hostPortFilter{}, node: node("n1"),
			existing: []*api.Task{task("other", 1, running("n1"), publishing(host, udp, 8080))},
			task:     task("s", 1, publishing(host, tcp, 8080)),
			applies:  true, pass: true, explain: "host-mode port already in use on 2 nodes"},
		{name: "host ports: taken by ingress publish", filter: &hostPortFilter{}, node: node("n1"),
			existing: []*api.Task{task("other", 1, running("n1"), publishing(api.PortConfig_PUBLISH_MODE_INGRESS, tcp, 8080))},
			task:     task("s", 1, publishing(host, tcp, 8080)),
			applies:  true, pass: true, explain: "host-mode port already in use on 2 nodes"},
		{name: "host ports: holder finished", filter: &hostPortFilter{}, node: node("n1"),
			existing: []*api.Task{task("other", 1, running("n1"), publishing(host, tcp, 8080),
				func(t *api.Task) { t.Status.State = api.TaskState_TASK_STATE_COMPLETE })},
			task:    task("s", 1, publishing(host, tcp, 8080)),
			applies: true, pass: true, explain: "host-mode port already in use on 2 nodes"},
		{name: "host ports: holder stopping", filter: &hostPortFilter{}, node: node("n1"),
			existing: []*api.Task{task("other", 1, running("n1"), publishing(host, tcp, 8080),
				func(t *api.Task) { t.DesiredState = api.TaskState_TASK_STATE_REMOVE })},
			task:    task("s", 1, publishing(host, tcp, 8080)),
			applies: true, pass: false, explain: "host-mode port already in use on 2 nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView()
			v.setNode(tt.node)
			for _, e := range tt.existing {
				v.setTask(e)
			}
			if got := tt.filter.SetTask(tt.task); got != tt.applies {
				t.Errorf("SetTask = %v, want %v", got, tt.applies)
			}
			if tt.applies {
				if got := tt.filter.Check(v.nodes[tt.node.Id]); got != tt.pass {
					t.Errorf("Check = %v, want %v", got, tt.pass)
				}
			}
			if got := tt.filter.Explain(2); got != tt.explain {
				t.Errorf("Explain(2) = %q, want %q", got, tt.explain)
			}
		})
	}
}

func TestExplainSingular(t *testing.T) {
	if got := (readyFilter{}).Explain(1); got != "1 node not available for new tasks" {
		t.Errorf("Explain(1) = %q", got)
	}
}
