package dispatcher_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

// Reports change a task only forward, only for the node it is assigned to,
// and only with the states agents may report.
func TestTaskStatusRules(t *testing.T) {
	tests := []struct {
		name    string
		node    string // the task's node
		initial api.TaskState
		report  *api.TaskStatusUpdate
		want    api.TaskState
		wantMsg string
	}{
		{name: "forward", node: node1, initial: api.TaskState_TASK_STATE_ASSIGNED,
			report: report("t1", api.TaskState_TASK_STATE_RUNNING), want: api.TaskState_TASK_STATE_RUNNING},
		{name: "backwards is ignored", node: node1, initial: api.TaskState_TASK_STATE_RUNNING,
			report: report("t1", api.TaskState_TASK_STATE_STARTING), want: api.TaskState_TASK_STATE_RUNNING},
		{name: "to a final state", node: node1, initial: api.TaskState_TASK_STATE_RUNNING,
			report: &api.TaskStatusUpdate{TaskId: "t1", Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_FAILED, Err: "exit 3", ExitCode: 3}},
			want:   api.TaskState_TASK_STATE_FAILED},
		{name: "out of a final state is ignored", node: node1, initial: api.TaskState_TASK_STATE_FAILED,
			report: report("t1", api.TaskState_TASK_STATE_RUNNING), want: api.TaskState_TASK_STATE_FAILED},
		{name: "same state, new details", node: node1, initial: api.TaskState_TASK_STATE_RUNNING,
			report: &api.TaskStatusUpdate{TaskId: "t1", Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING, Message: "healthy"}},
			want:   api.TaskState_TASK_STATE_RUNNING, wantMsg: "healthy"},
		{name: "another node's task is ignored", node: node2, initial: api.TaskState_TASK_STATE_ASSIGNED,
			report: report("t1", api.TaskState_TASK_STATE_RUNNING), want: api.TaskState_TASK_STATE_ASSIGNED},
		{name: "a manager's state is ignored", node: node1, initial: api.TaskState_TASK_STATE_RUNNING,
			report: report("t1", api.TaskState_TASK_STATE_ORPHANED), want: api.TaskState_TASK_STATE_RUNNING},
		{name: "an unknown task is ignored", node: node1, initial: api.TaskState_TASK_STATE_ASSIGNED,
			report: report("t9", api.TaskState_TASK_STATE_RUNNING), want: api.TaskState_TASK_STATE_ASSIGNED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, longPeriod)
			e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN), newNode(node2, api.NodeState_NODE_STATE_DOWN))
			task := newTask("t1", tc.node, tc.initial)
			task.Status.Message = "initial"
			e.addTasks(t, task)
			e.run(t)
			sid := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId

			if err := e.reportStatus(t, node1, sid, tc.report); err != nil {
				t.Fatalf("UpdateTaskStatus: %v", err)
			}
			got := e.task("t1").Status
			if got.State != tc.want {
				t.Errorf("state %v, want %v", got.State, tc.want)
			}
			if tc.wantMsg != "" && got.Message != tc.wantMsg {
				t.Errorf("message %q, want %q", got.Message, tc.wantMsg)
			}
			if tc.want == tc.initial && tc.wantMsg == "" && got.Message != "initial" {
				t.Errorf("an ignored report changed the status to %v", got)
			}
			if got.State == api.TaskState_TASK_STATE_FAILED && tc.initial != api.TaskState_TASK_STATE_FAILED && (got.ExitCode != 3 || got.Err != "exit 3") {
				t.Errorf("failure details lost: %v", got)
			}
			if got.Message != "initial" && got.Timestamp == nil {
				t.Error("the report left no timestamp on the status")
			}
		})
	}
}

// holdFirstTaskUpdate holds the first transaction that updates a task until
// the returned release is called; held receives once it is held.
func holdFirstTaskUpdate(t *testing.T, e *testEnv) (held <-chan struct{}, release func()) {
	heldc := make(chan struct{}, 1)
	releasec := make(chan struct{})
	var once sync.Once
	e.proposer.setHold(func(txn *api.StoreTransaction) <-chan struct{} {
		for _, a := range txn.Actions {
			if a.GetTask() != nil && a.Kind == api.StoreAction_KIND_UPDATE {
				var wait <-chan struct{}
				once.Do(func() { heldc <- struct{}{}; wait = releasec })
				return wait
			}
		}
		return nil
	})
	release = sync.OnceFunc(func() { close(releasec) })
	t.Cleanup(release)
	return heldc, release
}

// Reports from many nodes that arrive while a commit is under way are
// committed together, in transactions of at most 1,000 tasks.
func TestTaskStatusesAreBatched(t *testing.T) {
	tests := []struct {
		name        string
		nodes       int
		perNode     int
		wantCommits int // after the held first one
	}{
		{name: "many nodes, one transaction", nodes: 10, perNode: 10, wantCommits: 1},
		{name: "2,500 reports, three transactions", nodes: 3, perNode: 1250, wantCommits: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, longPeriod)
			var nodes []*api.Node
			var tasks []*api.Task
			for n := range tc.nodes {
				id := fmt.Sprintf("node%03d", n)
				nodes = append(nodes, newNode(id, api.NodeState_NODE_STATE_DOWN))
				for i := range tc.perNode {
					tasks = append(tasks, newTask(fmt.Sprintf("%s-t%04d", id, i), id, api.TaskState_TASK_STATE_ASSIGNED))
				}
			}
			e.addNodes(t, nodes...)
			e.addTasks(t, tasks...)
			e.run(t)
			sessions := make(map[string]string)
			for _, n := range nodes {
				sessions[n.Id] = e.session(t, n.Id, "192.0.2.1:5000", desc1).recv(t).SessionId
			}
			reportRunning := func(nodeID string, n int) error {
				var updates []*api.TaskStatusUpdate
				for i := range n {
					updates = append(updates, report(fmt.Sprintf("%s-t%04d", nodeID, i), api.TaskState_TASK_STATE_RUNNING))
				}
				return e.reportStatus(t, nodeID, sessions[nodeID], updates...)
			}

			// The first node's single report is committed first and held
			// there; the others' queue meanwhile.
			held, release := holdFirstTaskUpdate(t, e)
			errs := make(chan error, len(nodes))
			go func() { errs <- reportRunning(nodes[0].Id, 1) }()
			select {
			case <-held:
			case <-time.After(waitFor):
				t.Fatal("the first report was never committed")
			}
			for _, n := range nodes[1:] {
				go func() { errs <- reportRunning(n.Id, tc.perNode) }()
			}
			want := (len(nodes) - 1) * tc.perNode
			eventually(t, "every other report is queued", func() bool { return e.d.QueuedTaskStates() == want })
			release()
			for range nodes {
				select {
				case err := <-errs:
					if err != nil {
						t.Fatalf("UpdateTaskStatus: %v", err)
					}
				case <-time.After(waitFor):
					t.Fatal("UpdateTaskStatus did not return")
				}
			}
			if got := e.proposer.taskUpdateCount(); got != 1+tc.wantCommits {
				t.Errorf("%d transactions updated tasks, want %d", got, 1+tc.wantCommits)
			}
			for _, task := range tasks[tc.perNode:] {
				if st := e.task(task.Id).Status.State; st != api.TaskState_TASK_STATE_RUNNING {
					t.Fatalf("task %s is %v after its report returned, want RUNNING", task.Id, st)
				}
			}
		})
	}
}

// A report still queued when this manager stops leading fails, so the agent
// reports it again to the next leader.
func TestQueuedReportsFailWhenLeadershipEnds(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.addTasks(t, newTask("t1", node1, api.TaskState_TASK_STATE_ASSIGNED))
	stop := e.run(t)
	sid := e.session(t, node1, "192.0.2.1:5000", desc1).recv(t).SessionId
	held, _ := holdFirstTaskUpdate(t, e)
	errc := make(chan error, 1)
	go func() { errc <- e.reportStatus(t, node1, sid, report("t1", api.TaskState_TASK_STATE_RUNNING)) }()
	select {
	case <-held:
	case <-time.After(waitFor):
		t.Fatal("the report was never committed")
	}
	stop()
	select {
	case err := <-errc:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("UpdateTaskStatus: got %v, want Unavailable", err)
		}
	case <-time.After(waitFor):
		t.Fatal("UpdateTaskStatus did not return after leadership ended")
	}
	if st := e.task("t1").Status.State; st != api.TaskState_TASK_STATE_ASSIGNED {
		t.Errorf("t1 is %v, want the report uncommitted", st)
	}
}
