package scheduler

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

// start runs a scheduler on st until the test ends, with a tick too long
// to matter: everything these tests see must be driven by events.
func start(t *testing.T, st *store.MemoryStore, prepare ...func(*Scheduler)) {
	t.Helper()
	s := New(st, nil)
	s.tick = time.Hour
	for _, p := range prepare {
		p(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after its context ended, want nil", err)
		}
	})
}

func objects[T store.Object](ts ...T) []store.Object {
	out := make([]store.Object, 0, len(ts))
	for _, t := range ts {
		out = append(out, t)
	}
	return out
}

// assigned counts a service's ASSIGNED tasks per node.
func assigned(tx store.ReadTx, service string) map[string]int {
	out := map[string]int{}
	for _, t := range tx.TasksByService(service) {
		if t.Status.State == api.TaskState_TASK_STATE_ASSIGNED {
			out[t.NodeId]++
		}
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestRunAssignsPendingTasks(t *testing.T) {
	st := storetest.New()
	create(t, st, objects(node("n1"), node("n2"), node("n3"))...)
	create(t, st, objects(tasks("web", 6)...)...)
	start(t, st)

	waitFor(t, st, "6 tasks assigned", func(tx store.ReadTx) bool { return total(assigned(tx, "web")) == 6 })
	st.View(func(tx store.ReadTx) {
		if got := assigned(tx, "web"); !maps.Equal(got, map[string]int{"n1": 2, "n2": 2, "n3": 2}) {
			t.Errorf("assigned %v, want 2 per node", got)
		}
		for _, tk := range tx.TasksByService("web") {
			if tk.Status.Message != assignedMessage {
				t.Errorf("task %s: message %q, want %q", tk.Id, tk.Status.Message, assignedMessage)
			}
		}
	})

	// Tasks created later are placed too, on the emptiest nodes.
	create(t, st, task("web", 7), task("web", 8), task("web", 9))
	waitFor(t, st, "9 tasks assigned", func(tx store.ReadTx) bool { return total(assigned(tx, "web")) == 9 })
	st.View(func(tx store.ReadTx) {
		if got := assigned(tx, "web"); !maps.Equal(got, map[string]int{"n1": 3, "n2": 3, "n3": 3}) {
			t.Errorf("assigned %v, want 3 per node", got)
		}
	})
}

func TestRunPlacesOnANodeThatBecomesReady(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1", withState(api.NodeState_NODE_STATE_DOWN)))
	create(t, st, objects(tasks("web", 2)...)...)
	start(t, st)

	const why = "no suitable node (1 node not available for new tasks)"
	waitFor(t, st, "the pending reason", func(tx store.ReadTx) bool {
		for _, tk := range tx.TasksByService("web") {
			if tk.Status.State != api.TaskState_TASK_STATE_PENDING || tk.Status.Message != why {
				return false
			}
		}
		return true
	})

	err := st.Update(context.Background(), func(tx store.Tx) error {
		n := tx.Node("n1")
		n.Status.State = api.NodeState_NODE_STATE_READY
		return tx.Update(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, "tasks assigned to n1", func(tx store.ReadTx) bool { return assigned(tx, "web")["n1"] == 2 })
}

func TestRunRetriesWhenRoomIsFreed(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1", withResources(1, 8*gib)))
	create(t, st, task("old", 1, running("n1"), reserving(1, 0)))
	create(t, st, task("web", 1, reserving(1, 0)))
	start(t, st)
	waitFor(t, st, "web.1 explained", func(tx store.ReadTx) bool {
		return tx.Task("web.1").Status.Message == "no suitable node (insufficient resources on 1 node)"
	})

	err := st.Update(context.Background(), func(tx store.Tx) error {
		old := tx.Task("old.1")
		old.Status.State = api.TaskState_TASK_STATE_COMPLETE
		return tx.Update(old)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, "web.1 assigned", func(tx store.ReadTx) bool { return assigned(tx, "web")["n1"] == 1 })
}

func TestRunDoesNotOverwriteAChangedTask(t *testing.T) {
	st := storetest.New()
	// Room for two tasks: the pass places web.1 and web.2 and explains web.3.
	create(t, st, node("n1", withResources(2, 8*gib)))
	create(t, st, objects(tasks("web", 3, reserving(1, 0))...)...)

	var once sync.Once
	start(t, st, func(s *Scheduler) {
		s.beforeCommit = func() {
			once.Do(func() {
				// Between the plan and its commit, web.1 is told to stop.
				err := st.Update(context.Background(), func(tx store.Tx) error {
					tk := tx.Task("web.1")
					tk.DesiredState = api.TaskState_TASK_STATE_REMOVE
					return tx.Update(tk)
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
	})

	// web.1 keeps what its writer set; the room the pass meant for it goes
	// to web.3 on the next pass.
	waitFor(t, st, "web.2 and web.3 assigned", func(tx store.ReadTx) bool { return total(assigned(tx, "web")) == 2 })
	st.View(func(tx store.ReadTx) {
		w1 := tx.Task("web.1")
		if w1.NodeId != "" || w1.Status.State != api.TaskState_TASK_STATE_PENDING ||
			w1.DesiredState != api.TaskState_TASK_STATE_REMOVE {
			t.Errorf("web.1 was overwritten: node %q, state %v, desired %v", w1.NodeId, w1.Status.State, w1.DesiredState)
		}
		for _, id := range []string{"web.2", "web.3"} {
			if tk := tx.Task(id); tk.NodeId != "n1" {
				t.Errorf("%s on %q, want n1", id, tk.NodeId)
			}
		}
	})
}

func TestRunWritesAPendingReasonOnlyWhenItChanges(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1", withState(api.NodeState_NODE_STATE_DOWN)))
	create(t, st, task("web", 1))

	passes := make(chan struct{}, 100)
	start(t, st, func(s *Scheduler) {
		s.tick = time.Millisecond // many passes with nothing new
		s.beforeCommit = func() {
			select {
			case passes <- struct{}{}:
			default:
			}
		}
	})
	for range 10 {
		<-passes
	}
	// Versions are raft indexes: one write after the create moved web.1
	// from the create's index (2) to 3, and no pass since wrote again.
	st.View(func(tx store.ReadTx) {
		tk := tx.Task("web.1")
		if tk.Status.Message != "no suitable node (1 node not available for new tasks)" {
			t.Errorf("message %q", tk.Status.Message)
		}
		if v := tk.Meta.Version; v != 3 {
			t.Errorf("web.1 at version %d after 10 passes, want 3 (one write)", v)
		}
	})
}

func TestRunReloadsAfterARestore(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1", withState(api.NodeState_NODE_STATE_DOWN)))
	start(t, st)

	// Another manager's state, as a raft snapshot would bring it.
	other := storetest.New()
	create(t, other, node("n1", withState(api.NodeState_NODE_STATE_DOWN)), node("n2"))
	create(t, other, objects(tasks("web", 2)...)...)
	snap, err := other.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Restore(other.AppliedIndex(), snap); err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, "tasks assigned to n2", func(tx store.ReadTx) bool { return assigned(tx, "web")["n2"] == 2 })
}

func TestRunPresetNode(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1"), node("n2", withAvailability(api.NodeAvailability_NODE_AVAILABILITY_PAUSE)))
	create(t, st, task("agent", 0, onNode("n1")), task("agent", 0, onNode("n2")))
	start(t, st)
	waitFor(t, st, "agent.n1 assigned and agent.n2 explained", func(tx store.ReadTx) bool {
		n1, n2 := tx.Task("agent.n1"), tx.Task("agent.n2")
		return n1.Status.State == api.TaskState_TASK_STATE_ASSIGNED && n1.NodeId == "n1" &&
			n2.Status.Message == "no suitable node (1 node not available for new tasks)"
	})
	err := st.Update(context.Background(), func(tx store.Tx) error {
		n := tx.Node("n2")
		n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
		return tx.Update(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, "agent.n2 assigned", func(tx store.ReadTx) bool {
		return tx.Task("agent.n2").Status.State == api.TaskState_TASK_STATE_ASSIGNED
	})
}
