package dispatcher_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// onNetwork returns t attached to network "net1" at addr.
func onNetwork(t *api.Task, addr string) *api.Task {
	t.Networks = []*api.NetworkAttachment{{NetworkId: "net1", Address: addr}}
	return t
}

// endpointsOf renders a message's endpoint changes as "task@ip/mac→vtep" and "-task".
func endpointsOf(m *api.AssignmentsMessage) []string {
	var out []string
	for _, ep := range m.Endpoints {
		e := ep.TaskId + "@" + ep.Ip + "/" + ep.Mac + "→" + ep.Vtep
		if ep.Draining {
			e += " draining"
		}
		out = append(out, e)
	}
	for _, k := range m.RemovedEndpoints {
		out = append(out, "-"+k.TaskId)
	}
	return out
}

func (e *testEnv) setNodeState(t *testing.T, id string, state api.NodeState) {
	t.Helper()
	err := e.store.Update(t.Context(), func(tx store.Tx) error {
		n := tx.Node(id)
		if n == nil {
			return errors.New("no node " + id)
		}
		n.Status.State = state
		return tx.Update(n)
	})
	if err != nil {
		t.Fatalf("set state of %s: %v", id, err)
	}
}

// withVTEP is node 1's description, advertising a data-path address.
func withVTEP(addr string) *api.NodeDescription {
	return &api.NodeDescription{Hostname: desc1.GetHostname(), DataPathAddr: addr}
}

// Every stream carries every network's endpoints: RUNNING tasks meant to run,
// on nodes that are not down, at their node's advertised data-path address,
// with the MAC derived from the IP; then each change.
func TestEndpointViews(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN), newNode(node2, api.NodeState_NODE_STATE_DOWN))
	e.addTasks(t,
		onNetwork(newTask("t1", node1, api.TaskState_TASK_STATE_RUNNING), "10.0.0.5/24"),
		onNetwork(newTask("t2", node2, api.TaskState_TASK_STATE_ASSIGNED), "10.0.0.6/24"),
		newTask("t3", node2, api.TaskState_TASK_STATE_RUNNING), // no network: no endpoint
	)
	e.run(t)
	sid2 := e.session(t, node2, "192.0.2.2:5000", &api.NodeDescription{Hostname: "n2", DataPathAddr: "198.18.0.2"}).recv(t).SessionId
	sid1 := e.session(t, node1, "192.0.2.1:5000", withVTEP("192.0.2.1")).recv(t).SessionId
	a := e.assignments(t, node2, sid2)

	// Node 1's session commits its address as the stream opens: the view
	// may complete in the next message.
	first := a.recv(t)
	if first.Type != api.AssignmentsMessage_TYPE_COMPLETE {
		t.Fatalf("first message is %v, want COMPLETE", first.Type)
	}
	want := []string{"t1@10.0.0.5/02:42:0a:00:00:05→192.0.2.1"}
	if got := endpointsOf(first); !slices.Equal(got, want) {
		if len(got) != 0 {
			t.Fatalf("COMPLETE endpoints %v, want %v or none", got, want)
		}
		if got := endpointsOf(a.recv(t)); !slices.Equal(got, want) {
			t.Fatalf("endpoints after COMPLETE %v, want %v", got, want)
		}
	}
	steps := []struct {
		name   string
		change func(t *testing.T)
		want   []string
	}{
		{"a task RUNNING becomes an endpoint at its node's advertised address",
			func(t *testing.T) {
				e.changeTask(t, "t2", func(task *api.Task) { task.Status.State = api.TaskState_TASK_STATE_RUNNING })
			},
			[]string{"t2@10.0.0.6/02:42:0a:00:00:06→198.18.0.2"}},
		{"a node declared down has its endpoints withdrawn",
			func(t *testing.T) { e.setNodeState(t, node1, api.NodeState_NODE_STATE_DOWN) },
			[]string{"-t1"}},
		{"and back when it is up again",
			func(t *testing.T) { e.setNodeState(t, node1, api.NodeState_NODE_STATE_READY) },
			[]string{"t1@10.0.0.5/02:42:0a:00:00:05→192.0.2.1"}},
		{"a task being replaced drains while it still runs: overlays keep it, load balancers drop it",
			func(t *testing.T) {
				e.changeTask(t, "t1", func(task *api.Task) { task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })
			},
			[]string{"t1@10.0.0.5/02:42:0a:00:00:05→192.0.2.1 draining"}},
		{"its node going down withdraws it",
			func(t *testing.T) { e.setNodeState(t, node1, api.NodeState_NODE_STATE_DOWN) },
			[]string{"-t1"}},
		{"and the node coming back does not publish it again",
			func(t *testing.T) {
				e.setNodeState(t, node1, api.NodeState_NODE_STATE_READY)
				e.changeTask(t, "t2", func(task *api.Task) { task.Slot = 2 }) // a change to see
			},
			[]string{"t2@10.0.0.6/02:42:0a:00:00:06→198.18.0.2"}},
		{"a task that stops running is withdrawn",
			func(t *testing.T) {
				e.changeTask(t, "t2", func(task *api.Task) { task.Status.State = api.TaskState_TASK_STATE_FAILED })
			},
			[]string{"-t2"}},
		{"back when it runs again",
			func(t *testing.T) {
				e.changeTask(t, "t2", func(task *api.Task) { task.Status.State = api.TaskState_TASK_STATE_RUNNING })
			},
			[]string{"t2@10.0.0.6/02:42:0a:00:00:06→198.18.0.2"}},
		{"a slot's new task on another node takes the address",
			func(t *testing.T) {
				e.addTasks(t, onNetwork(newTask("t4", node2, api.TaskState_TASK_STATE_RUNNING), "10.0.0.5/24"))
			},
			[]string{"t4@10.0.0.5/02:42:0a:00:00:05→198.18.0.2"}},
		{"a deleted task is withdrawn",
			func(t *testing.T) { e.deleteTask(t, "t2") },
			[]string{"-t2"}},
		{"another task runs",
			func(t *testing.T) {
				e.addTasks(t, onNetwork(newTask("t5", node2, api.TaskState_TASK_STATE_RUNNING), "10.0.0.9/24"))
			},
			[]string{"t5@10.0.0.9/02:42:0a:00:00:09→198.18.0.2"}},
		{"a task asked to stop drains",
			func(t *testing.T) {
				e.changeTask(t, "t5", func(task *api.Task) { task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })
			},
			[]string{"t5@10.0.0.9/02:42:0a:00:00:09→198.18.0.2 draining"}},
		{"and is withdrawn once it stops",
			func(t *testing.T) {
				e.changeTask(t, "t5", func(task *api.Task) { task.Status.State = api.TaskState_TASK_STATE_SHUTDOWN })
			},
			[]string{"-t5"}},
	}
	for _, st := range steps {
		st.change(t)
		if got := endpointsOf(a.recv(t)); !slices.Equal(got, st.want) {
			t.Fatalf("%s: endpoints %v, want %v", st.name, got, st.want)
		}
	}

	// A new stream (an agent reconnecting) gets the whole view again, with the definitions of
	// the networks it spans.
	b := e.assignments(t, node1, sid1)
	if got, want := endpointsOf(b.recv(t)), []string{"t4@10.0.0.5/02:42:0a:00:00:05→198.18.0.2"}; !slices.Equal(got, want) {
		t.Fatalf("COMPLETE endpoints of a new stream %v, want %v", got, want)
	}
}

// A node with no task on a network still gets the network's definition with its endpoints: its
// overlay needs the VNI.
func TestEndpointViewsCarryTheirNetworks(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN), newNode(node2, api.NodeState_NODE_STATE_DOWN))
	if err := e.store.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.Create(&api.Network{Id: "net2", Vni: 4097, Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "unused"}}}); err != nil {
			return err
		}
		return tx.Create(&api.Network{Id: "net1", Vni: 4096, Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "front"}}})
	}); err != nil {
		t.Fatal(err)
	}
	e.addTasks(t, onNetwork(newTask("t1", node1, api.TaskState_TASK_STATE_RUNNING), "10.0.0.5/24"))
	e.run(t)
	e.session(t, node1, "192.0.2.1:5000", withVTEP("192.0.2.1")).recv(t)
	sid2 := e.session(t, node2, "192.0.2.2:5000", &api.NodeDescription{Hostname: "n2"}).recv(t).SessionId
	a := e.assignments(t, node2, sid2)
	// The COMPLETE message carries every network, used or not, so an agent can tell which of
	// those it knows were removed while it was away.
	m := a.recv(t)
	var nets []string
	for _, n := range m.Networks {
		nets = append(nets, fmt.Sprintf("%s/%d", n.Id, n.Vni))
	}
	if !slices.Equal(nets, []string{"net1/4096", "net2/4097"}) {
		t.Fatalf("COMPLETE carries networks %v, want net1 and net2 with their VNIs", nets)
	}
	for len(m.Endpoints) == 0 { // node 1's address not committed yet when the view was read
		m = a.recv(t)
	}
	// A removed network is announced, so nodes take it off before a new one wants its VNI.
	e.deleteTask(t, "t1")
	if m := a.recv(t); !slices.Equal(endpointsOf(m), []string{"-t1"}) {
		t.Fatalf("after the task's deletion: %v", endpointsOf(m))
	}
	if err := e.store.Update(t.Context(), func(tx store.Tx) error { return tx.Delete(tx.Network("net1")) }); err != nil {
		t.Fatal(err)
	}
	if m := a.recv(t); !slices.Equal(m.RemovedNetworks, []string{"net1"}) {
		t.Fatalf("after the network's removal: removed networks %v, want [net1]", m.RemovedNetworks)
	}
}
