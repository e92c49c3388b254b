package dispatcher_test

import (
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

func taskIDs(tasks []*api.Task) []string {
	ids := make([]string, 0, len(tasks))
	for _, t := range tasks {
		ids = append(ids, t.Id)
	}
	return ids
}

// A stream starts with every task of the node that is assigned or past it
// (those to stop too), then carries only what the agent needs: new
// assignments, desired state changes and removals of its own tasks. Steps
// that must send nothing are followed by one that sends: the next message
// being that step's shows the silent one sent nothing.
func TestAssignmentsCompleteThenIncremental(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN), newNode(node2, api.NodeState_NODE_STATE_DOWN))
	stopping := newTask("t2", node1, api.TaskState_TASK_STATE_RUNNING)
	stopping.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
	e.addTasks(t,
		newTask("t1", node1, api.TaskState_TASK_STATE_ASSIGNED),
		stopping,
		newTask("t3", node1, api.TaskState_TASK_STATE_PENDING), // the scheduler has not admitted it
		newTask("t4", node2, api.TaskState_TASK_STATE_ASSIGNED),
		newTask("t5", "", api.TaskState_TASK_STATE_PENDING),
	)
	e.run(t)
	sid := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId
	a := e.assignments(t, node1, sid)

	first := a.recv(t)
	if first.Type != api.AssignmentsMessage_TYPE_COMPLETE {
		t.Fatalf("first message is %v, want COMPLETE", first.Type)
	}
	if got := taskIDs(first.UpdateTasks); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Fatalf("COMPLETE lists %v, want [t1 t2]", got)
	}
	if first.UpdateTasks[1].DesiredState != api.TaskState_TASK_STATE_SHUTDOWN {
		t.Errorf("t2 is sent desired %v, want SHUTDOWN", first.UpdateTasks[1].DesiredState)
	}

	steps := []struct {
		name    string
		change  func(t *testing.T)
		silent  bool // no message expected
		updates []string
		removes []string
		check   func(t *testing.T, m *api.AssignmentsMessage)
	}{
		{
			name: "the agent's own status report is not sent back",
			change: func(t *testing.T) {
				e.changeTask(t, "t1", func(task *api.Task) { task.Status.State = api.TaskState_TASK_STATE_RUNNING })
			},
			silent: true,
		},
		{
			name: "another node's task is not sent",
			change: func(t *testing.T) {
				e.changeTask(t, "t4", func(task *api.Task) { task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })
			},
			silent: true,
		},
		{
			name: "a task still pending is not sent",
			change: func(t *testing.T) {
				e.changeTask(t, "t5", func(task *api.Task) { task.Status.Message = "no suitable node" })
			},
			silent: true,
		},
		{
			name: "an admitted task is sent",
			change: func(t *testing.T) {
				e.changeTask(t, "t3", func(task *api.Task) { task.Status.State = api.TaskState_TASK_STATE_ASSIGNED })
			},
			updates: []string{"t3"},
		},
		{
			name: "a newly assigned task is sent",
			change: func(t *testing.T) {
				e.changeTask(t, "t5", func(task *api.Task) {
					task.NodeId = node1
					task.Status.State = api.TaskState_TASK_STATE_ASSIGNED
				})
			},
			updates: []string{"t5"},
		},
		{
			name: "a desired state change is sent",
			change: func(t *testing.T) {
				e.changeTask(t, "t1", func(task *api.Task) { task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })
			},
			updates: []string{"t1"},
			check: func(t *testing.T, m *api.AssignmentsMessage) {
				if m.UpdateTasks[0].DesiredState != api.TaskState_TASK_STATE_SHUTDOWN {
					t.Errorf("t1 is sent desired %v, want SHUTDOWN", m.UpdateTasks[0].DesiredState)
				}
			},
		},
		{
			name: "an orphaned task is removed: its slot went to a successor",
			change: func(t *testing.T) {
				e.changeTask(t, "t5", func(task *api.Task) { task.Status.State = api.TaskState_TASK_STATE_ORPHANED })
			},
			removes: []string{"t5"},
		},
		{
			name:    "a deleted task is removed",
			change:  func(t *testing.T) { e.deleteTask(t, "t2") },
			removes: []string{"t2"},
		},
		{
			name:   "another node's deleted task is not",
			change: func(t *testing.T) { e.deleteTask(t, "t4") },
			silent: true,
		},
		{
			name: "a global task created assigned is sent",
			change: func(t *testing.T) {
				e.addTasks(t, newTask("t6", node1, api.TaskState_TASK_STATE_ASSIGNED))
			},
			updates: []string{"t6"},
		},
	}
	for _, step := range steps {
		step.change(t)
		if step.silent {
			continue
		}
		m := a.recv(t)
		if m.Type != api.AssignmentsMessage_TYPE_INCREMENTAL {
			t.Fatalf("%s: message is %v, want INCREMENTAL", step.name, m.Type)
		}
		if got := taskIDs(m.UpdateTasks); !slices.Equal(got, step.updates) {
			t.Fatalf("%s: update_tasks %v, want %v", step.name, got, step.updates)
		}
		if !slices.Equal(m.RemoveTasks, step.removes) {
			t.Fatalf("%s: remove_tasks %v, want %v", step.name, m.RemoveTasks, step.removes)
		}
		if step.check != nil {
			step.check(t, m)
		}
	}
}

// A new stream of the same node (after a reconnect) starts over with a
// COMPLETE message holding the tasks' current state.
func TestNewStreamStartsComplete(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.addTasks(t, newTask("t1", node1, api.TaskState_TASK_STATE_ASSIGNED))
	e.run(t)
	sid := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId
	first := e.assignments(t, node1, sid)
	first.recv(t)

	e.changeTask(t, "t1", func(task *api.Task) { task.Status.State = api.TaskState_TASK_STATE_RUNNING })
	sid2 := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId
	if err := first.end(t); status.Code(err) != codes.Unavailable {
		t.Errorf("the old session's stream ended with %v, want Unavailable", err)
	}
	m := e.assignments(t, node1, sid2).recv(t)
	if m.Type != api.AssignmentsMessage_TYPE_COMPLETE || len(m.UpdateTasks) != 1 {
		t.Fatalf("first message of the new stream %v, want COMPLETE with t1", m)
	}
	if want := e.task("t1"); !proto.Equal(m.UpdateTasks[0], want) {
		t.Errorf("t1 sent as %v, want its stored state %v", m.UpdateTasks[0], want)
	}
}

// The COMPLETE message is the agent's whole truth: a task missing from it
// is stopped. So it is read after a raft read barrier, never from a store
// that may lag the log (a deposed leader that has not stepped down yet, or
// one that has not applied what the new leader assigned).
func TestCompleteAssignmentsReadTheWholeLog(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.addTasks(t, newTask("t1", node1, api.TaskState_TASK_STATE_RUNNING))
	e.run(t)
	sid := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId

	// Committed in the log, not yet applied here.
	e.commitUnseen(t, func(tx store.Tx) error { return tx.Create(newTask("t2", node1, api.TaskState_TASK_STATE_ASSIGNED)) })
	a := e.assignments(t, node1, sid)
	m := a.recv(t)
	if m.Type != api.AssignmentsMessage_TYPE_COMPLETE {
		t.Fatalf("first message is %v, want COMPLETE", m.Type)
	}
	if got := taskIDs(m.UpdateTasks); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Fatalf("COMPLETE lists %v, want [t1 t2]: the agent would stop what it was not told of", got)
	}

	// The change the catch-up applied is not sent again.
	e.changeTask(t, "t1", func(task *api.Task) { task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })
	if m := a.recv(t); !slices.Equal(taskIDs(m.UpdateTasks), []string{"t1"}) || len(m.RemoveTasks) != 0 {
		t.Errorf("next message updates %v and removes %v, want only t1", taskIDs(m.UpdateTasks), m.RemoveTasks)
	}
}

// A manager that cannot confirm it has the whole log sends no COMPLETE
// message: the stream ends Unavailable and the agent reconnects, to the new
// leader if there is one.
func TestCompleteAssignmentsNeedAReadBarrier(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.addTasks(t, newTask("t1", node1, api.TaskState_TASK_STATE_RUNNING))
	e.run(t)
	sid := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId

	e.proposer.failBarriers(errors.New("no leader"))
	a := e.assignments(t, node1, sid)
	if err := a.end(t); status.Code(err) != codes.Unavailable {
		t.Errorf("the stream ended with %v, want Unavailable", err)
	}
	select {
	case m := <-a.stream.msgs:
		t.Errorf("sent %v %v without a read barrier", m.Type, taskIDs(m.UpdateTasks))
	default:
	}
}

// Calls naming a session that is not the node's current one are refused
// with NotFound, which tells the agent to open a new session.
func TestStaleSessionIsRefused(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN), newNode(node2, api.NodeState_NODE_STATE_DOWN))
	e.addTasks(t, newTask("t1", node1, api.TaskState_TASK_STATE_ASSIGNED))
	e.run(t)
	old := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId
	cur := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId
	other := e.session(t, node2, "192.0.2.2:5000", desc1).recv(t).SessionId

	tests := []struct {
		name    string
		node    string
		session string
	}{
		{name: "replaced session", node: node1, session: old},
		{name: "unknown session", node: node1, session: "nope"},
		{name: "empty session", node: node1, session: ""},
		{name: "another node's session", node: node1, session: other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.assignments(t, tc.node, tc.session).end(t); status.Code(err) != codes.NotFound {
				t.Errorf("Assignments: got %v, want NotFound", err)
			}
			err := e.reportStatus(t, tc.node, tc.session, report("t1", api.TaskState_TASK_STATE_RUNNING))
			if status.Code(err) != codes.NotFound {
				t.Errorf("UpdateTaskStatus: got %v, want NotFound", err)
			}
		})
	}
	if st := e.task("t1").Status.State; st != api.TaskState_TASK_STATE_ASSIGNED {
		t.Errorf("a refused report moved t1 to %v", st)
	}
	if err := e.reportStatus(t, node1, cur, report("t1", api.TaskState_TASK_STATE_RUNNING)); err != nil {
		t.Fatalf("report on the current session: %v", err)
	}
}

// A session opened with a new description (the node restarted with other
// resources or labels) replaces the stored one.
func TestSessionUpdatesDescription(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.run(t)
	e.session(t, node1, "192.0.2.1:5000", desc1).recv(t)
	desc2 := &api.NodeDescription{
		Hostname: "host-1", Os: "linux", Arch: "amd64", Executor: "sim",
		Resources:    &api.Resources{NanoCpus: 4e9, MemoryBytes: 4 << 30},
		EngineLabels: map[string]string{"zone": "a"},
	}
	e.session(t, node1, "192.0.2.1:5000", desc2).recv(t)
	if got := e.node(node1).Description; !proto.Equal(got, desc2) {
		t.Errorf("description %v, want %v", got, desc2)
	}
}

// The networks of the tasks sent travel with them, once per stream and again when they change,
// without the allocator's records.
func TestAssignmentsCarryNetworks(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	network := &api.Network{Id: "net1", Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "web-net"}, Driver: "overlay",
		Ipam: []*api.IPAMConfig{{Subnet: "198.18.0.0/24"}}}, Vni: 4097,
		Allocation: []*api.SubnetAllocation{{Subnet: "198.18.0.0/24", Last: "198.18.0.9"}}}
	if err := e.store.Update(t.Context(), func(tx store.Tx) error { return tx.Create(network) }); err != nil {
		t.Fatal(err)
	}
	attached := func(id string) *api.Task {
		task := newTask(id, node1, api.TaskState_TASK_STATE_ASSIGNED)
		task.Networks = []*api.NetworkAttachment{{NetworkId: "net1", Address: "198.18.0.5/24"}}
		return task
	}
	e.addTasks(t, attached("t1"), newTask("t0", node1, api.TaskState_TASK_STATE_ASSIGNED))
	e.run(t)
	sid := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId
	a := e.assignments(t, node1, sid)
	first := a.recv(t)
	if len(first.Networks) != 1 || first.Networks[0].Id != "net1" || first.Networks[0].Vni != 4097 {
		t.Fatalf("COMPLETE carries networks %v, want net1", first.Networks)
	}
	if first.Networks[0].Allocation != nil {
		t.Errorf("the network is sent with its allocation records: %v", first.Networks[0].Allocation)
	}

	e.addTasks(t, attached("t2"))
	if m := a.recv(t); !slices.Equal(taskIDs(m.UpdateTasks), []string{"t2"}) || len(m.Networks) != 0 {
		t.Fatalf("second task's message: tasks %v, networks %v; want t2 and no network (sent already)", taskIDs(m.UpdateTasks), m.Networks)
	}

	if err := e.store.Update(t.Context(), func(tx store.Tx) error {
		n := tx.Network("net1")
		n.Spec.Plugins = []*api.CNIPlugin{{Type: "tuning", ConfigJson: `{"mtu":1400}`}}
		return tx.Update(n)
	}); err != nil {
		t.Fatal(err)
	}
	e.changeTask(t, "t2", func(task *api.Task) { task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })
	m := a.recv(t)
	if len(m.Networks) != 1 || len(m.Networks[0].GetSpec().GetPlugins()) != 1 {
		t.Fatalf("after the network changed: networks %v, want net1 with its new plugin", m.Networks)
	}
}
