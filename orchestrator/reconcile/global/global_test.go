package global

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/store"
)

// Short names for the steps of TestFollowsNodes.
var (
	setNode      = reconciletest.SetNode
	availability = reconciletest.WithAvailability
	state        = reconciletest.WithState
	label        = reconciletest.WithLabel
)

func TestFollowsNodes(t *testing.T) {
	h := newHarness(t)
	reconciletest.Create(t, h.s, node("n1", "zone", "a"), node("n2", "zone", "a"), node("n3", "zone", "b"),
		service("agent", "node.labels.zone==a"))
	h.start(t)
	h.waitNodes(t, "agent", "n1", "n2")

	for _, step := range []struct {
		name   string
		change func(store.Tx) error
		want   []string
	}{
		{"a node joins", func(tx store.Tx) error { return tx.Create(node("n4", "zone", "a")) }, []string{"n1", "n2", "n4"}},
		{"a node of unknown state joins", func(tx store.Tx) error {
			n := node("n5", "zone", "a")
			n.Status.State = api.NodeState_NODE_STATE_UNKNOWN
			return tx.Create(n)
		}, []string{"n1", "n2", "n4", "n5"}},
		{"a node is drained", setNode("n1", availability(api.NodeAvailability_NODE_AVAILABILITY_DRAIN)), []string{"n2", "n4", "n5"}},
		{"a label stops matching", setNode("n2", label("zone", "b")), []string{"n4", "n5"}},
		{"a label starts matching", setNode("n3", label("zone", "a")), []string{"n3", "n4", "n5"}},
		{"a node goes down", setNode("n4", state(api.NodeState_NODE_STATE_DOWN)), []string{"n3", "n5"}},
		{"it comes back", setNode("n4", state(api.NodeState_NODE_STATE_READY)), []string{"n3", "n4", "n5"}},
		{"a node is removed", func(tx store.Tx) error { return tx.Delete(tx.Node("n3")) }, []string{"n4", "n5"}},
		{"a drained node is activated", setNode("n1", availability(api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)), []string{"n1", "n4", "n5"}},
		{"a paused node keeps its task", setNode("n1", availability(api.NodeAvailability_NODE_AVAILABILITY_PAUSE)), []string{"n1", "n4", "n5"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			h.update(t, step.change)
			h.waitNodes(t, "agent", step.want...)
			for _, task := range h.tasks("agent") {
				if !reconcile.MeantToRun(task) && task.DesiredState != api.TaskState_TASK_STATE_SHUTDOWN {
					t.Errorf("task on %s desired %v, want SHUTDOWN", task.NodeId, task.DesiredState)
				}
				if task.Slot != 0 || task.Status.GetState() != api.TaskState_TASK_STATE_PENDING {
					t.Errorf("task on %s: slot %d, state %v; want slot 0, PENDING", task.NodeId, task.Slot, task.Status.GetState())
				}
			}
		})
	}
}

func TestEligibilityForNewTasks(t *testing.T) {
	for _, tc := range []struct {
		name string
		node *api.Node
		svc  *api.Service
		want bool
	}{
		{"ready active node", node("n"), service("s"), true},
		{"paused node", func() *api.Node {
			n := node("n")
			n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_PAUSE
			return n
		}(), service("s"), false},
		{"disconnected node", func() *api.Node {
			n := node("n")
			n.Status.State = api.NodeState_NODE_STATE_DISCONNECTED
			return n
		}(), service("s"), false},
		{"constraint on hostname", node("n"), service("s", "node.hostname!=n"), false},
		{"matching platform, kernel arch name", node("n"), func() *api.Service {
			s := service("s")
			s.Spec.Task.Placement.Platforms = []*api.Platform{{Os: "windows"}, {Os: "linux", Arch: "amd64"}}
			return s
		}(), true},
		{"no matching platform", node("n"), func() *api.Service {
			s := service("s")
			s.Spec.Task.Placement.Platforms = []*api.Platform{{Arch: "arm64"}}
			return s
		}(), false},
		{"unreadable constraint starts nothing", node("n"), service("s", "node.colour==red"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			reconciletest.Create(t, h.s, tc.node, tc.svc)
			h.start(t)
			h.settle(t)
			if got := len(h.tasks("s")) == 1; got != tc.want {
				t.Fatalf("node got a task: %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEndedTaskRestartsOnItsNode(t *testing.T) {
	h := newHarness(t)
	h.update(t, func(tx store.Tx) error {
		for _, n := range []*api.Node{node("n1"), node("n2")} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		s := service("agent")
		s.Spec.Task.Restart = &api.RestartPolicy{Delay: durationpb.New(time.Millisecond)}
		return tx.Create(s)
	})
	h.start(t)
	h.waitNodes(t, "agent", "n1", "n2")
	var failed *api.Task
	h.update(t, func(tx store.Tx) error {
		for _, task := range tx.TasksByService("agent") {
			if task.NodeId == "n1" {
				failed = task
			}
		}
		reconcile.SetStatus(failed, api.TaskState_TASK_STATE_FAILED, "exit 1", time.Now())
		return tx.Update(failed)
	})
	reconciletest.WaitFor(t, h.s, "a replacement on n1", func(tx store.ReadTx) bool {
		if tx.Task(failed.Id).DesiredState != api.TaskState_TASK_STATE_SHUTDOWN {
			return false
		}
		for _, task := range tx.TasksByNode("n1") {
			if task.Id != failed.Id && reconcile.MeantToRun(task) {
				return true
			}
		}
		return false
	})
	h.waitNodes(t, "agent", "n1", "n2")
}

func TestNewLeaderConvergesWithoutDuplicates(t *testing.T) {
	h := newHarness(t)
	h.update(t, func(tx store.Tx) error {
		for _, n := range []*api.Node{node("n1"), node("n2")} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		s := service("agent")
		if err := tx.Create(s); err != nil {
			return err
		}
		// n1 has two tasks (an old leader's race), n2 none.
		for range 2 {
			task := reconcile.NewTask(s, 0, "n1", time.Now())
			reconcile.SetStatus(task, api.TaskState_TASK_STATE_RUNNING, "", time.Now())
			if err := tx.Create(task); err != nil {
				return err
			}
		}
		return nil
	})
	for term := range 2 {
		stop := h.start(t)
		h.waitNodes(t, "agent", "n1", "n2")
		h.settle(t)
		h.waitNodes(t, "agent", "n1", "n2")
		if got := len(h.tasks("agent")); got != 3 {
			t.Fatalf("term %d: %d tasks, want 3", term, got)
		}
		stop()
	}
}

func TestDirtyNodesGoToTheUpdater(t *testing.T) {
	h := newHarness(t)
	reconciletest.Create(t, h.s, node("n1"), node("n2"), service("agent"))
	h.start(t)
	h.waitNodes(t, "agent", "n1", "n2")
	h.update(t, func(tx store.Tx) error {
		s := tx.Service("agent")
		s.Spec.Task.Container.Image = "agent:2"
		s.SpecVersion++
		return tx.Update(s)
	})
	h.settle(t)
	c, ok := h.updater.Last()
	if !ok || c.Service.SpecVersion != 2 || len(c.Slots) != 2 {
		t.Fatalf("updater last called with %d slots of %+v (called: %v), want both nodes at spec_version 2",
			len(c.Slots), c.Service, ok)
	}
	if got := len(h.tasks("agent")); got != 2 {
		t.Errorf("%d tasks: the reconciler replaced tasks itself", got)
	}
}

// While update_status says an update or a rollback is in progress, the
// service goes to the Updater on every pass, out-of-date nodes or not:
// only the Updater ends an update. Otherwise only out-of-date nodes do.
func TestUpdateInProgressGoesToTheUpdater(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state api.UpdateStatus_State
		svc   *api.Service
		want  bool
	}{
		{"updating, no eligible node", api.UpdateStatus_STATE_UPDATING, service("agent", "node.id==none"), true},
		{"updating, every node up to date", api.UpdateStatus_STATE_UPDATING, service("agent"), true},
		{"rolling back, no eligible node", api.UpdateStatus_STATE_ROLLBACK_STARTED, service("agent", "node.id==none"), true},
		{"completed, every node up to date", api.UpdateStatus_STATE_COMPLETED, service("agent"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.svc.UpdateStatus = &api.UpdateStatus{State: tc.state}
			reconciletest.Create(t, h.s, node("n1"), tc.svc)
			h.start(t)
			h.settle(t)
			c, ok := h.updater.Last()
			if called := ok && c.Service.GetId() == "agent"; called != tc.want {
				t.Fatalf("updater called for agent: %v, want %v", called, tc.want)
			}
			if ok && len(c.Slots) != 0 {
				t.Errorf("updater handed %d nodes, want none: none is out of date", len(c.Slots))
			}
		})
	}
}

func TestDeletedServiceTasksAreRemoved(t *testing.T) {
	h := newHarness(t)
	reconciletest.Create(t, h.s, node("n1"), service("agent"))
	h.start(t)
	h.waitNodes(t, "agent", "n1")
	h.update(t, func(tx store.Tx) error { return tx.Delete(tx.Service("agent")) })
	reconciletest.WaitFor(t, h.s, "every task desired REMOVE", func(tx store.ReadTx) bool {
		for _, task := range tx.TasksByService("agent") {
			if task.DesiredState != api.TaskState_TASK_STATE_REMOVE {
				return false
			}
		}
		return true
	})
}

func TestStartFirstPairIsLeftToTheUpdater(t *testing.T) {
	h := newHarness(t)
	h.update(t, func(tx store.Tx) error {
		if err := tx.Create(node("n1")); err != nil {
			return err
		}
		s := service("agent")
		s.SpecVersion = 2
		if err := tx.Create(s); err != nil {
			return err
		}
		// A start-first update under way: the old task runs, the new one
		// starts beside it.
		old := reconcile.NewTask(s, 0, "n1", time.Now())
		old.SpecVersion = 1
		reconcile.SetStatus(old, api.TaskState_TASK_STATE_RUNNING, "", time.Now())
		if err := tx.Create(old); err != nil {
			return err
		}
		return tx.Create(reconcile.NewTask(s, 0, "n1", time.Now()))
	})
	h.start(t)
	h.settle(t)
	h.waitNodes(t, "agent", "n1", "n1")
}
