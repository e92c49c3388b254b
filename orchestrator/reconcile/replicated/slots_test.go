package replicated

// Tests of the slot rule: no replacement while another task holds the slot,
// one task per spec_version in a slot, and start-first pairs left alone.

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/reconcile/restart"
	"github.com/shoal/shoal/orchestrator/store"
)

// slotTask is a task of svc's slot, made from spec version, on node a,
// observed state, created age before now.
func slotTask(svc *api.Service, slot, version uint64, state api.TaskState, age time.Duration) *api.Task {
	t := reconcile.NewTask(svc, slot, "a", time.Now())
	t.SpecVersion = version
	reconcile.SetStatus(t, state, "", time.Now())
	t.Meta = &api.Meta{CreatedAt: timestamppb.New(time.Now().Add(-age))}
	return t
}

// A start-first update's new task failed (or lost its node) while the old
// task still runs the slot: the new one is stopped and nothing replaces it,
// now or after a delay; the old task keeps the slot.
func TestNoReplacementBesideATaskMeantToRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy *api.RestartPolicy
		fail   func(newTask *api.Task) func(store.Tx) error
	}{
		{"new task failed, immediate restart", &api.RestartPolicy{Delay: durationpb.New(0)}, failTask},
		{"new task failed, delayed restart", &api.RestartPolicy{Delay: durationpb.New(time.Millisecond)}, failTask},
		{"new task's node lost", &api.RestartPolicy{Delay: durationpb.New(0)}, func(newTask *api.Task) func(store.Tx) error {
			return reconciletest.SetNode("b", reconciletest.WithState(api.NodeState_NODE_STATE_DOWN))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			svc := service("web", 1, tc.policy)
			svc.SpecVersion = 2
			old := slotTask(svc, 1, 1, api.TaskState_TASK_STATE_RUNNING, time.Hour)
			newTask := slotTask(svc, 1, 2, api.TaskState_TASK_STATE_STARTING, 0)
			newTask.NodeId = "b"
			reconciletest.Create(t, h.s, reconciletest.Node("a"), reconciletest.Node("b"), svc, old, newTask)
			h.start(t)
			h.settle(t)

			h.update(t, tc.fail(newTask))
			reconciletest.WaitFor(t, h.s, "the new task stopped", func(tx store.ReadTx) bool {
				return tx.Task(newTask.Id).DesiredState == api.TaskState_TASK_STATE_SHUTDOWN
			})
			h.settle(t)
			if got := h.tasks("web"); len(got) != 2 {
				t.Fatalf("%d tasks, want the old and the new one only: a replacement was made beside the old task", len(got))
			}
			h.waitSlots(t, "web", seq(1, 1))
			var got *api.Task
			h.s.View(func(tx store.ReadTx) { got = tx.Task(old.Id) })
			if !reconcile.MeantToRun(got) {
				t.Errorf("old task desired %v, want it still meant to run", got.DesiredState)
			}
			if h.sup.Held(restart.Key{ServiceID: "web", Slot: 1}) {
				t.Error("slot 1 held for a delayed replacement beside the old task")
			}
		})
	}
}

// failTask reports t FAILED, as its agent would.
func failTask(t *api.Task) func(store.Tx) error {
	return func(tx store.Tx) error {
		cur := tx.Task(t.Id)
		reconcile.SetStatus(cur, api.TaskState_TASK_STATE_FAILED, "exit 1", time.Now())
		return tx.Update(cur)
	}
}

// Several tasks of one spec_version meant to run in one slot (an old
// leader's race): the one furthest along stays, the others are shut down,
// and nothing new is created.
func TestDuplicatesInASlotAreShutDown(t *testing.T) {
	h := newHarness(t, nil)
	svc := service("web", 3, nil)
	const (
		pending  = api.TaskState_TASK_STATE_PENDING
		starting = api.TaskState_TASK_STATE_STARTING
		running  = api.TaskState_TASK_STATE_RUNNING
	)
	tasks := map[string]*api.Task{
		// Slot 1: RUNNING beats a newer PENDING and STARTING.
		"1-running":  slotTask(svc, 1, 1, running, time.Hour),
		"1-pending":  slotTask(svc, 1, 1, pending, 0),
		"1-starting": slotTask(svc, 1, 1, starting, time.Minute),
		// Slot 2: both RUNNING, the newest stays.
		"2-old": slotTask(svc, 2, 1, running, time.Hour),
		"2-new": slotTask(svc, 2, 1, running, time.Minute),
		// Slot 3: alone.
		"3": slotTask(svc, 3, 1, running, time.Hour),
	}
	objs := []store.Object{reconciletest.Node("a"), svc}
	for _, task := range tasks {
		objs = append(objs, task)
	}
	reconciletest.Create(t, h.s, objs...)
	h.start(t)
	h.waitSlots(t, "web", seq(1, 3))
	h.settle(t)
	want := map[string]bool{"1-running": true, "2-new": true, "3": true}
	for name, task := range tasks {
		var got *api.Task
		h.s.View(func(tx store.ReadTx) { got = tx.Task(task.Id) })
		switch {
		case want[name] && !reconcile.MeantToRun(got):
			t.Errorf("%s desired %v, want it kept", name, got.DesiredState)
		case !want[name] && got.DesiredState != api.TaskState_TASK_STATE_SHUTDOWN:
			t.Errorf("%s desired %v, want SHUTDOWN", name, got.DesiredState)
		}
	}
	if got := len(h.tasks("web")); got != len(tasks) {
		t.Errorf("%d tasks, want %d: the reconciler created some", got, len(tasks))
	}
}

// A start-first update under way holds an old-version and a new-version
// task meant to run in one slot: both stay, and the slot goes to the
// Updater.
func TestStartFirstPairIsLeftToTheUpdater(t *testing.T) {
	h := newHarness(t, nil)
	svc := service("web", 1, nil)
	svc.SpecVersion = 2
	old := slotTask(svc, 1, 1, api.TaskState_TASK_STATE_RUNNING, time.Hour)
	newTask := slotTask(svc, 1, 2, api.TaskState_TASK_STATE_STARTING, 0)
	reconciletest.Create(t, h.s, reconciletest.Node("a"), svc, old, newTask)
	h.start(t)
	h.settle(t)
	h.waitSlots(t, "web", []uint64{1, 1})
	c, ok := h.updater.Last()
	if !ok || len(c.Slots) != 1 || len(c.Slots[0]) != 2 {
		t.Fatalf("updater last called with %+v (called: %v), want slot 1 and both its tasks", c.Slots, ok)
	}
}
