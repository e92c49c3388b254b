package update

// Failure handling: pause, continue, the failure ratio, automatic rollback
// and a rollback that fails in turn.

import (
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

func TestFailureActions(t *testing.T) {
	isNew := func(task *api.Task) bool { return image(task) == "web:2" }
	newInSlot2 := func(task *api.Task) bool { return isNew(task) && task.Slot == 2 }
	for _, tc := range []struct {
		name       string
		cfg        *api.UpdateConfig
		fail       func(*api.Task) bool
		failLater  func(*api.Task) bool
		want       api.UpdateStatus_State
		startFirst bool
	}{
		{name: "a task failing to start pauses", cfg: updateConfig(1, 0, time.Minute, pause),
			fail: isNew, want: api.UpdateStatus_STATE_PAUSED},
		{name: "a task failing within monitor pauses", cfg: updateConfig(1, time.Minute, time.Minute, pause),
			failLater: isNew, want: api.UpdateStatus_STATE_PAUSED},
		{name: "start-first failure pauses and keeps the old task", cfg: updateConfig(1, 0, time.Minute, pause),
			fail: isNew, want: api.UpdateStatus_STATE_PAUSED, startFirst: true},
		{name: "continue goes on", cfg: updateConfig(1, 0, time.Millisecond, cont),
			fail: newInSlot2, want: api.UpdateStatus_STATE_COMPLETED},
		{name: "failures within the ratio go on", cfg: func() *api.UpdateConfig {
			uc := updateConfig(1, 0, time.Millisecond, pause)
			uc.MaxFailureRatio = 0.5
			return uc
		}(), fail: newInSlot2, want: api.UpdateStatus_STATE_COMPLETED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.startFirst {
				tc.cfg.Order = api.UpdateConfig_ORDER_START_FIRST
			}
			e.agent.set(func(a *agent) { a.fail, a.failAfterRunning = tc.fail, tc.failLater })
			e.seed(replicatedSpec(4, "web:1", tc.cfg))
			seeded := e.tasks()
			e.changeSpec(setImage("web:2"))
			e.reconcile(e.ctx, e.sup)
			e.waitState(tc.want)

			var failed []*api.Task
			touched := make(map[slotKey]bool)
			for _, task := range e.tasks() {
				if task.SpecVersion == 2 {
					touched[keyOf(task)] = true
					if task.GetStatus().GetState() == api.TaskState_TASK_STATE_FAILED {
						failed = append(failed, task)
					}
				}
			}
			if len(failed) != 1 {
				t.Fatalf("%d new tasks failed, want 1", len(failed))
			}
			if tc.want == api.UpdateStatus_STATE_COMPLETED {
				if len(touched) != 4 {
					t.Errorf("%d slots rolled, want 4", len(touched))
				}
				return
			}
			if msg, want := e.service().GetUpdateStatus().GetMessage(), PausedMessage(failed[0].Id); msg != want {
				t.Errorf("status message %q, want %q", msg, want)
			}
			if len(touched) != 1 {
				t.Errorf("%d slots rolled before the pause, want 1", len(touched))
			}
			now := make(map[string]*api.Task)
			for _, task := range e.tasks() {
				now[task.Id] = task
			}
			for _, old := range seeded {
				cur := now[old.Id]
				if touched[keyOf(old)] && !tc.startFirst {
					continue
				}
				if cur.DesiredState != api.TaskState_TASK_STATE_RUNNING || cur.SpecVersion != 1 {
					t.Errorf("%s: old task %s desired %v spec_version %d, want it untouched", keyOf(old), old.Id, cur.DesiredState, cur.SpecVersion)
				}
			}
			if tc.startFirst && reconcile.MeantToRun(failed[0]) {
				t.Errorf("failed start-first task %s still desired %v, want SHUTDOWN", failed[0].Id, failed[0].DesiredState)
			}

			// The reconciler keeps calling; a new leader's Supervisor too:
			// a paused update stays paused and nothing is written.
			e.waitAgentIdle()
			sup := e.newSupervisor()
			applied := e.st.AppliedIndex()
			sup.Update(e.ctx, e.service(), dirtySlots(e.service(), e.tasks()))
			e.waitIdle(sup)
			if got := e.st.AppliedIndex(); got != applied {
				t.Errorf("a new supervisor wrote to the store (index %d → %d) for a paused update", applied, got)
			}
			e.sup.mu.Lock()
			started := e.sup.started
			e.sup.mu.Unlock()
			if started != 1 {
				t.Errorf("%d updaters started for one spec version, want 1", started)
			}
		})
	}
}

func TestRollback(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fail        func(*api.Task) bool
		want        api.UpdateStatus_State
		wantMessage func(failedID string) string
	}{
		{
			name:        "rolls back to the previous spec",
			fail:        func(t *api.Task) bool { return image(t) == "web:2" },
			want:        api.UpdateStatus_STATE_ROLLBACK_COMPLETED,
			wantMessage: func(string) string { return MessageRollbackCompleted },
		},
		{
			name:        "a failing rollback pauses",
			fail:        func(t *api.Task) bool { return image(t) == "web:2" || t.SpecVersion == 3 },
			want:        api.UpdateStatus_STATE_ROLLBACK_PAUSED,
			wantMessage: RollbackPausedMessage,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.agent.set(func(a *agent) { a.fail = tc.fail })
			spec := replicatedSpec(4, "web:1", updateConfig(1, 0, time.Minute, rollback))
			spec.Rollback = updateConfig(0, 0, time.Millisecond, rollback)
			e.seed(spec)
			seeded := e.tasks()
			rec := e.record()
			e.changeSpec(setImage("web:2"))
			e.reconcile(e.ctx, e.sup)
			e.waitState(tc.want)

			svc := e.service()
			if image := svc.GetSpec().GetTask().GetContainer().GetImage(); image != "web:1" || svc.SpecVersion != 3 {
				t.Errorf("spec image %q version %d, want web:1 at 3", image, svc.SpecVersion)
			}
			if image := svc.GetPreviousSpec().GetTask().GetContainer().GetImage(); image != "web:2" || svc.PreviousSpecVersion != 2 {
				t.Errorf("previous spec image %q version %d, want web:2 at 2", image, svc.PreviousSpecVersion)
			}
			var failedNew, failedBack string
			for _, task := range e.tasks() {
				if task.GetStatus().GetState() == api.TaskState_TASK_STATE_FAILED {
					if image(task) == "web:2" {
						failedNew = task.Id
					} else {
						failedBack = task.Id
					}
				}
			}
			if msg, want := svc.GetUpdateStatus().GetMessage(), tc.wantMessage(failedBack); msg != want {
				t.Errorf("status message %q, want %q", msg, want)
			}
			var started string
			replay(rec, e.recorded(rec), func(b store.Batch, _ map[string]*api.Task) {
				for _, ev := range b.Events {
					if s, ok := ev.Object.(*api.Service); ok && s.GetUpdateStatus().GetState() == api.UpdateStatus_STATE_ROLLBACK_STARTED {
						started = s.GetUpdateStatus().GetMessage()
					}
				}
			})
			if want := RolledBackMessage(failedNew); started != want {
				t.Errorf("rollback started with message %q, want %q", started, want)
			}
			if tc.want != api.UpdateStatus_STATE_ROLLBACK_COMPLETED {
				return
			}
			e.waitConverged("web:1")
			checkConverged(t, e, 3, "web:1")
			kept := 0
			for _, old := range seeded {
				for _, task := range e.tasks() {
					if task.Id == old.Id && reconcile.MeantToRun(task) {
						kept++
					}
				}
			}
			if kept != 3 {
				t.Errorf("%d of the 3 never-updated tasks kept running through the rollback, want all", kept)
			}
		})
	}
}
