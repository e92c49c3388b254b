package update

// Rolling: groups in order, start-first, resuming under a new leader, one
// updater per service, global services, in-place updates, and the
// Supervisor's memory. The checks the failure tests share live here too.

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

const (
	pause    = api.UpdateConfig_FAILURE_ACTION_PAUSE
	cont     = api.UpdateConfig_FAILURE_ACTION_CONTINUE
	rollback = api.UpdateConfig_FAILURE_ACTION_ROLLBACK
)

func setImage(img string) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) { s.Task.Container.Image = img }
}

// checkConverged fails unless every slot has exactly one task meant to
// run, made from spec_version version with image img, running.
func checkConverged(t *testing.T, e *env, version uint64, img string) {
	t.Helper()
	bySlot := make(map[slotKey][]*api.Task)
	for _, task := range e.tasks() {
		if reconcile.MeantToRun(task) {
			bySlot[keyOf(task)] = append(bySlot[keyOf(task)], task)
		}
	}
	for k, tasks := range bySlot {
		if len(tasks) != 1 {
			t.Errorf("%s: %d tasks meant to run, want 1", k, len(tasks))
			continue
		}
		task := tasks[0]
		if task.SpecVersion != version || image(task) != img || task.GetStatus().GetState() != api.TaskState_TASK_STATE_RUNNING {
			t.Errorf("%s: task %s is spec_version %d image %q %v, want %d %q RUNNING", k, task.Id,
				task.SpecVersion, image(task), task.GetStatus().GetState(), version, img)
		}
	}
}

// waitAgentIdle waits until the agent has nothing left to do, so it
// writes no more.
func (e *env) waitAgentIdle() {
	e.t.Helper()
	e.waitFor("the agent to be idle", func(tx store.ReadTx) bool {
		for _, t := range tx.Tasks() {
			state := t.GetStatus().GetState()
			if reconcile.MeantToRun(t) && state < api.TaskState_TASK_STATE_RUNNING ||
				!reconcile.MeantToRun(t) && state <= api.TaskState_TASK_STATE_RUNNING {
				return false
			}
		}
		return true
	})
}

// waitConverged waits until every task meant to run is a running task of
// image img.
func (e *env) waitConverged(img string) {
	e.t.Helper()
	e.waitFor("tasks of "+img+" running", func(tx store.ReadTx) bool {
		for _, t := range tx.TasksByService(svcID) {
			if reconcile.MeantToRun(t) && (image(t) != img || t.GetStatus().GetState() != api.TaskState_TASK_STATE_RUNNING) {
				return false
			}
		}
		return true
	})
}

func TestRollsGroupsInOrder(t *testing.T) {
	e := newEnv(t)
	const delay = 7 * time.Millisecond
	e.seed(replicatedSpec(6, "web:1", updateConfig(2, delay, time.Millisecond, pause)))
	rec := e.record()
	e.changeSpec(setImage("web:2"))
	e.reconcile(e.ctx, e.sup)
	e.waitState(api.UpdateStatus_STATE_COMPLETED)

	var groups [][]uint64
	replay(rec, e.recorded(rec), func(b store.Batch, tasks map[string]*api.Task) {
		for k, n := range meantToRunBySlot(tasks) {
			if n > 1 {
				t.Errorf("batch %d: %s has %d tasks meant to run", b.Index, k, n)
			}
		}
		var created []uint64
		retired := make(map[uint64]bool)
		for _, ev := range b.Events {
			task, ok := ev.Object.(*api.Task)
			if !ok {
				continue
			}
			switch {
			case ev.Action == api.StoreAction_KIND_CREATE && task.SpecVersion == 2:
				created = append(created, task.Slot)
			case ev.Action == api.StoreAction_KIND_UPDATE && !reconcile.MeantToRun(task) && reconcile.MeantToRun(ev.Old.(*api.Task)):
				retired[task.Slot] = true
			}
		}
		if len(created) == 0 {
			return
		}
		slices.Sort(created)
		for _, slot := range created {
			if !retired[slot] {
				t.Errorf("slot %d: new task created without its old task's shutdown in the same transaction", slot)
			}
		}
		if len(groups) > 0 {
			for _, slot := range groups[len(groups)-1] {
				if !slices.ContainsFunc(slices.Collect(maps.Values(tasks)), func(task *api.Task) bool {
					return task.Slot == slot && task.SpecVersion == 2 && task.Status.State == api.TaskState_TASK_STATE_RUNNING
				}) {
					t.Errorf("group %v started before slot %d's new task ran", created, slot)
				}
			}
		}
		groups = append(groups, created)
	})
	if want := [][]uint64{{1, 2}, {3, 4}, {5, 6}}; !reflect.DeepEqual(groups, want) {
		t.Errorf("groups rolled %v, want %v", groups, want)
	}
	if n := e.waits(delay); n != 2 {
		t.Errorf("waited the delay %d times between 3 groups, want 2", n)
	}
	st := e.service().GetUpdateStatus()
	if st.GetMessage() != MessageCompleted || st.GetCompletedAt() == nil {
		t.Errorf("update status %v, want message %q and completed_at", st, MessageCompleted)
	}
	checkConverged(t, e, 2, "web:2")
}

func TestStartFirstKeepsReplicasRunning(t *testing.T) {
	e := newEnv(t)
	const replicas = 4
	uc := updateConfig(2, 0, time.Millisecond, pause)
	uc.Order = api.UpdateConfig_ORDER_START_FIRST
	e.seed(replicatedSpec(replicas, "web:1", uc))
	rec := e.record()
	e.changeSpec(setImage("web:2"))
	e.reconcile(e.ctx, e.sup)
	e.waitState(api.UpdateStatus_STATE_COMPLETED)
	e.waitConverged("web:2")

	fewest := replicas
	replay(rec, e.recorded(rec), func(b store.Batch, tasks map[string]*api.Task) {
		running := 0
		for _, task := range tasks {
			if task.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
				running++
			}
		}
		fewest = min(fewest, running)
	})
	if fewest < replicas {
		t.Errorf("as few as %d tasks ran during the update, want at least %d", fewest, replicas)
	}
	checkConverged(t, e, 2, "web:2")
}

func TestResumesAfterLeaderChange(t *testing.T) {
	for _, order := range []api.UpdateConfig_Order{api.UpdateConfig_ORDER_STOP_FIRST, api.UpdateConfig_ORDER_START_FIRST} {
		t.Run(order.String(), func(t *testing.T) {
			e := newEnv(t)
			e.agent.set(func(a *agent) { a.hold = func(t *api.Task) bool { return image(t) == "web:2" && t.Slot >= 3 } })
			uc := updateConfig(1, 0, 0, pause)
			uc.Order = order
			e.seed(replicatedSpec(6, "web:1", uc))
			e.changeSpec(setImage("web:2"))
			startedAt := e.service().GetUpdateStatus().GetStartedAt().AsTime()

			// The first leader rolls slots 1 and 2 and creates slot 3's
			// new task, which does not start before the leader goes.
			ctx1, leave := context.WithCancel(e.ctx)
			stopReconciler := e.reconcile(ctx1, e.sup)
			e.waitFor("slot 3's new task", func(tx store.ReadTx) bool {
				return slices.ContainsFunc(tx.TasksByService(svcID), func(t *api.Task) bool { return t.Slot == 3 && t.SpecVersion == 2 })
			})
			leave()
			stopReconciler()
			e.waitIdle(e.sup)
			if st := e.service().GetUpdateStatus().GetState(); st != api.UpdateStatus_STATE_UPDATING {
				t.Fatalf("update status %v after the leader left, want UPDATING", st)
			}

			// The next leader resumes.
			sup := e.newSupervisor()
			e.reconcile(e.ctx, sup)
			e.agent.set(func(a *agent) { a.hold = nil })
			e.waitState(api.UpdateStatus_STATE_COMPLETED)
			e.waitIdle(sup)
			e.waitConverged("web:2")

			perSlot := make(map[uint64]int)
			for _, task := range e.tasks() {
				if task.SpecVersion == 2 {
					perSlot[task.Slot]++
				}
			}
			for slot := uint64(1); slot <= 6; slot++ {
				if perSlot[slot] != 1 {
					t.Errorf("slot %d: %d new tasks created, want 1", slot, perSlot[slot])
				}
			}
			if got := e.service().GetUpdateStatus().GetStartedAt().AsTime(); !got.Equal(startedAt) {
				t.Errorf("started_at moved from %v to %v: the update restarted instead of resuming", startedAt, got)
			}
			checkConverged(t, e, 2, "web:2")
		})
	}
}

func TestOneUpdaterPerService(t *testing.T) {
	e := newEnv(t)
	e.agent.set(func(a *agent) { a.hold = func(t *api.Task) bool { return image(t) != "web:1" } })
	e.seed(replicatedSpec(3, "web:1", updateConfig(1, 0, 0, pause)))
	started := func() int {
		e.sup.mu.Lock()
		defer e.sup.mu.Unlock()
		return e.sup.started
	}

	e.changeSpec(setImage("web:2"))
	v2 := e.service()
	for range 3 {
		e.sup.Update(e.ctx, v2, dirtySlots(v2, e.tasks()))
	}
	if n := started(); n != 1 {
		t.Fatalf("%d updaters started by three calls for one spec version, want 1", n)
	}
	e.waitFor("slot 1's new task", func(tx store.ReadTx) bool {
		return slices.ContainsFunc(tx.TasksByService(svcID), func(t *api.Task) bool { return t.SpecVersion == 2 })
	})

	e.changeSpec(setImage("web:3"))
	v3 := e.service()
	e.sup.Update(e.ctx, v3, dirtySlots(v3, e.tasks()))
	e.sup.Update(e.ctx, v2, dirtySlots(v2, e.tasks())) // stale: ignored
	if n := started(); n != 2 {
		t.Fatalf("%d updaters started after a newer spec and a stale call, want 2", n)
	}
	e.agent.set(func(a *agent) { a.hold = nil })
	e.waitState(api.UpdateStatus_STATE_COMPLETED)
	e.waitConverged("web:3")
	checkConverged(t, e, 3, "web:3")
}

func TestGlobalService(t *testing.T) {
	e := newEnv(t)
	active := api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
	e.seed(globalSpec("agentd:1", updateConfig(0, 0, time.Millisecond, pause)),
		readyNode("n1", active), readyNode("n2", active), readyNode("n3", api.NodeAvailability_NODE_AVAILABILITY_DRAIN))
	e.changeSpec(setImage("agentd:2"))
	e.reconcile(e.ctx, e.sup)
	e.waitState(api.UpdateStatus_STATE_COMPLETED)

	onNode := make(map[string][]string)
	for _, task := range e.tasks() {
		if reconcile.MeantToRun(task) {
			onNode[task.NodeId] = append(onNode[task.NodeId], image(task))
		}
	}
	want := map[string][]string{"n1": {"agentd:2"}, "n2": {"agentd:2"}, "n3": {"agentd:1"}}
	if !reflect.DeepEqual(onNode, want) {
		t.Errorf("tasks meant to run by node %v, want %v (the drained node is the global reconciler's)", onNode, want)
	}
}

// A paused node takes no new task (the scheduler admits none to it), so an
// update leaves its task alone, stop-first or start-first, and completes
// without it; once the node is active again its task is rolled.
func TestPausedNodeKeepsItsTaskUntilActive(t *testing.T) {
	for _, order := range []api.UpdateConfig_Order{api.UpdateConfig_ORDER_STOP_FIRST, api.UpdateConfig_ORDER_START_FIRST} {
		t.Run(order.String(), func(t *testing.T) {
			e := newEnv(t)
			onPaused := func(t *api.Task) bool { return t.NodeId == "n2" && image(t) == "agentd:2" }
			e.agent.set(func(a *agent) { a.hold = onPaused })
			uc := updateConfig(0, 0, time.Millisecond, pause)
			uc.Order = order
			e.seed(globalSpec("agentd:1", uc),
				readyNode("n1", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE),
				readyNode("n2", api.NodeAvailability_NODE_AVAILABILITY_PAUSE))
			var kept string
			for _, task := range e.tasks() {
				if task.NodeId == "n2" {
					kept = task.Id
				}
			}
			e.changeSpec(setImage("agentd:2"))
			e.reconcile(e.ctx, e.sup)
			e.waitState(api.UpdateStatus_STATE_COMPLETED)

			for _, task := range e.tasks() {
				switch {
				case task.Id == kept && !reconcile.MeantToRun(task):
					t.Errorf("the paused node's task was stopped (desired %v)", task.DesiredState)
				case task.NodeId == "n2" && task.Id != kept:
					t.Errorf("task %s (%s) created on the paused node", task.Id, image(task))
				case task.NodeId == "n1" && reconcile.MeantToRun(task) && image(task) != "agentd:2":
					t.Errorf("task %s on n1 runs %s, want agentd:2", task.Id, image(task))
				}
			}

			e.agent.set(func(a *agent) { a.hold = nil })
			err := e.st.Update(e.ctx, func(tx store.Tx) error {
				n := tx.Node("n2")
				n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
				return tx.Update(n)
			})
			if err != nil {
				t.Fatal(err)
			}
			e.waitConverged("agentd:2")
			e.waitState(api.UpdateStatus_STATE_COMPLETED)
			checkConverged(t, e, 2, "agentd:2")
		})
	}
}

func TestSameTaskSpecUpdatesInPlace(t *testing.T) {
	e := newEnv(t)
	e.seed(replicatedSpec(3, "web:1", updateConfig(1, 0, 0, pause)))
	seeded := e.tasks()
	e.changeSpec(func(s *api.ServiceSpec) { s.Update.Parallelism = 2 })
	e.reconcile(e.ctx, e.sup)
	e.waitState(api.UpdateStatus_STATE_COMPLETED)

	tasks := e.tasks()
	if len(tasks) != len(seeded) {
		t.Fatalf("%d tasks, want the %d there were", len(tasks), len(seeded))
	}
	for i, task := range tasks {
		if task.Id != seeded[i].Id || task.SpecVersion != 2 || !reconcile.MeantToRun(task) {
			t.Errorf("task %s spec_version %d desired %v, want %s at 2 still running", task.Id, task.SpecVersion, task.DesiredState, seeded[i].Id)
		}
	}
}

func TestStopsWhenServiceRemoved(t *testing.T) {
	e := newEnv(t)
	e.agent.set(func(a *agent) { a.hold = func(t *api.Task) bool { return image(t) == "web:2" } })
	e.seed(replicatedSpec(3, "web:1", updateConfig(1, 0, 0, pause)))
	e.changeSpec(setImage("web:2"))
	svc := e.service()
	e.sup.Update(e.ctx, svc, dirtySlots(svc, e.tasks()))
	e.waitFor("a new task", func(tx store.ReadTx) bool {
		return slices.ContainsFunc(tx.TasksByService(svcID), func(t *api.Task) bool { return t.SpecVersion == 2 })
	})
	err := e.st.Update(e.ctx, func(tx store.Tx) error { return tx.Delete(tx.Service(svcID)) })
	if err != nil {
		t.Fatal(err)
	}
	e.waitIdle(e.sup)
	e.sup.mu.Lock()
	defer e.sup.mu.Unlock()
	if r := e.sup.runs[svcID]; r != nil {
		t.Errorf("the supervisor still remembers an updater for the removed service: %+v", r)
	}
}

func TestSupervisorForgetsRemovedServices(t *testing.T) {
	e := newEnv(t)
	e.seed(replicatedSpec(2, "web:1", updateConfig(0, 0, 0, pause)))
	e.changeSpec(setImage("web:2"))
	gone := &run{version: 1, ctx: context.Background(), cancel: func() {}, done: make(chan struct{}), finished: true}
	close(gone.done)
	e.sup.mu.Lock()
	e.sup.runs["svc-gone"] = gone
	e.sup.pruneAt = 2
	e.sup.mu.Unlock()

	svc := e.service()
	e.sup.Update(e.ctx, svc, dirtySlots(svc, e.tasks()))
	e.waitState(api.UpdateStatus_STATE_COMPLETED)
	e.waitIdle(e.sup)
	e.sup.mu.Lock()
	defer e.sup.mu.Unlock()
	if _, ok := e.sup.runs["svc-gone"]; ok {
		t.Error("the finished update of a removed service is still remembered")
	}
	if r := e.sup.runs[svcID]; r == nil || !r.finished || r.version != 2 {
		t.Errorf("the finished update of %s is not remembered: %+v", svcID, r)
	}
}

func TestNextLeaderCallIsNotARepeat(t *testing.T) {
	e := newEnv(t)
	e.agent.set(func(a *agent) { a.hold = func(t *api.Task) bool { return image(t) == "web:2" } })
	e.seed(replicatedSpec(2, "web:1", updateConfig(1, 0, 0, pause)))
	e.changeSpec(setImage("web:2"))
	svc := e.service()

	term1, leave := context.WithCancel(e.ctx)
	e.sup.Update(term1, svc, dirtySlots(svc, e.tasks()))
	leave()
	// The same Supervisor, called at once by the next term's reconcilers,
	// whether or not the first updater has noticed yet.
	e.sup.Update(e.ctx, svc, dirtySlots(e.service(), e.tasks()))
	e.agent.set(func(a *agent) { a.hold = nil })
	e.waitState(api.UpdateStatus_STATE_COMPLETED)
	e.waitConverged("web:2")
	checkConverged(t, e, 2, "web:2")
}

// TestSlotsLeftByARollbackAreRolledBack: a finished rollback left a slot on
// the failed spec (its node was paused); when that slot is rolled later and
// fails again, the rollback pauses. It must not take the update's failure
// action and "roll back" to the spec the rollback left behind, the failed
// one.
func TestSlotsLeftByARollbackAreRolledBack(t *testing.T) {
	e := newEnv(t)
	e.agent.set(func(a *agent) {
		a.fail = func(t *api.Task) bool { return t.NodeId == "n2" && t.SpecVersion == 3 }
	})
	e.seed(globalSpec("agentd:1", updateConfig(1, 0, time.Millisecond, rollback)),
		readyNode("n1", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE),
		readyNode("n2", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE))
	err := e.st.Update(e.ctx, func(tx store.Tx) error {
		svc := tx.Service(svcID)
		failed := proto.Clone(svc.Spec).(*api.ServiceSpec)
		failed.Task.Container.Image = "agentd:2"
		svc.PreviousSpec, svc.PreviousSpecVersion, svc.SpecVersion = failed, 2, 3
		svc.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_STATE_ROLLBACK_COMPLETED, Message: MessageRollbackCompleted}
		if err := tx.Update(svc); err != nil {
			return err
		}
		for _, task := range tx.TasksByService(svcID) {
			if task.NodeId == "n2" { // left on the failed spec
				task.Spec.Container.Image, task.SpecVersion = "agentd:2", 2
				if err := tx.Update(task); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := e.service()
	e.sup.Update(e.ctx, svc, dirtySlots(svc, e.tasks()))
	e.waitState(api.UpdateStatus_STATE_ROLLBACK_PAUSED)
	if got := e.service(); got.Spec.Task.Container.Image != "agentd:1" || got.SpecVersion != 3 {
		t.Fatalf("after the failure: spec %s at version %d, want agentd:1 at 3", got.Spec.Task.Container.Image, got.SpecVersion)
	}
}
