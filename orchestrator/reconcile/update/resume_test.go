package update

// Ending an update that has no out-of-date slot left to hand over: a
// service with no slot at all, or a leader gone after its last group
// started. The reconcilers call the Supervisor with no slot while
// update_status says an update is in progress, and the update ends once
// the new tasks the old leader would still have watched pass.

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

func TestUpdateOfNoSlotCompletes(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec *api.ServiceSpec
	}{
		{"no replicas", replicatedSpec(0, "web:1", updateConfig(1, 0, time.Hour, pause))},
		{"a global service with no node", globalSpec("web:1", updateConfig(1, 0, time.Hour, pause))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.seed(tc.spec)
			e.changeSpec(setImage("web:2"))
			e.reconcile(e.ctx, e.sup)
			e.waitState(api.UpdateStatus_STATE_COMPLETED)
			if st := e.service().GetUpdateStatus(); st.GetMessage() != MessageCompleted || st.GetCompletedAt() == nil {
				t.Errorf("update status %v, want message %q and completed_at", st, MessageCompleted)
			}
		})
	}
}

// failover runs a first leader's reconciler and Supervisor until until
// returns, then takes that leader away; update_status must still say
// UPDATING.
func (e *env) failover(until func()) {
	e.t.Helper()
	ctx1, leave := context.WithCancel(e.ctx)
	stop := e.reconcile(ctx1, e.sup)
	until()
	leave()
	stop()
	e.waitIdle(e.sup)
	if st := e.service().GetUpdateStatus().GetState(); st != api.UpdateStatus_STATE_UPDATING {
		e.t.Fatalf("update status %v after the leader left, want UPDATING", st)
	}
	if dirty := dirtySlots(e.service(), e.tasks()); len(dirty) != 0 {
		e.t.Fatalf("%d slots still out of date after the leader left, want none", len(dirty))
	}
}

// The leader goes once the last stop-first group is created, before its
// new task runs: no slot is out of date, and the next leader completes
// the update only after that task runs.
func TestResumesALastGroupInFlight(t *testing.T) {
	e := newEnv(t)
	lastNew := func(t *api.Task) bool { return image(t) == "web:2" && t.Slot == 3 }
	e.agent.set(func(a *agent) { a.hold = lastNew })
	e.seed(replicatedSpec(3, "web:1", updateConfig(1, 0, 0, pause)))
	e.changeSpec(setImage("web:2"))
	e.failover(func() {
		e.waitFor("slot 3's new task", func(tx store.ReadTx) bool {
			return slices.ContainsFunc(tx.TasksByService(svcID), lastNew)
		})
	})

	rec := e.record()
	sup := e.newSupervisor()
	e.reconcile(e.ctx, sup)
	e.agent.set(func(a *agent) { a.hold = nil })
	e.waitState(api.UpdateStatus_STATE_COMPLETED)
	replay(rec, e.recorded(rec), func(b store.Batch, tasks map[string]*api.Task) {
		for _, ev := range b.Events {
			if s, ok := ev.Object.(*api.Service); !ok || s.GetUpdateStatus().GetState() != api.UpdateStatus_STATE_COMPLETED {
				continue
			}
			for _, task := range tasks {
				if reconcile.MeantToRun(task) && task.GetStatus().GetState() != api.TaskState_TASK_STATE_RUNNING {
					t.Errorf("update completed while task %s of slot %d was %v", task.Id, task.Slot, task.GetStatus().GetState())
				}
			}
		}
	})
	e.waitConverged("web:2")
	checkConverged(t, e, 2, "web:2")
}

// The leader goes while it watches the last group's running tasks for
// monitor: the next leader watches them for what is left of it, so a
// failure then still stops the update, and completes at once when they
// have all run longer than that.
func TestResumedUpdateWatchesNewTasks(t *testing.T) {
	const monitor = time.Hour
	watching := func(d time.Duration) bool { return d > monitor/2 }
	for _, tc := range []struct {
		name string
		// ranFor is how long ago the new tasks started running.
		ranFor time.Duration
		want   api.UpdateStatus_State
	}{
		{"within monitor, a failure pauses", 0, api.UpdateStatus_STATE_PAUSED},
		{"past monitor, completes", 2 * monitor, api.UpdateStatus_STATE_COMPLETED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.seed(replicatedSpec(3, "web:1", updateConfig(0, 0, monitor, pause)))
			e.changeSpec(setImage("web:2"))
			e.failover(func() { e.waitTimers(1, watching) })
			if tc.ranFor > 0 {
				started := timestamppb.New(time.Now().Add(-tc.ranFor))
				err := e.st.Update(e.ctx, func(tx store.Tx) error {
					for _, task := range tx.TasksByService(svcID) {
						if task.SpecVersion == 2 {
							task.Status.Timestamp = started
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
			}

			sup := e.newSupervisor()
			e.reconcile(e.ctx, sup)
			var victim string
			if tc.want == api.UpdateStatus_STATE_PAUSED {
				e.waitTimers(2, watching)
				for _, task := range e.tasks() {
					if task.SpecVersion == 2 && task.Slot == 2 {
						victim = task.Id
					}
				}
				e.agent.set(func(a *agent) { a.failAfterRunning = func(t *api.Task) bool { return t.Id == victim } })
			}
			e.waitState(tc.want)
			if victim != "" {
				if msg, want := e.service().GetUpdateStatus().GetMessage(), PausedMessage(victim); msg != want {
					t.Errorf("status message %q, want %q", msg, want)
				}
				return
			}
			checkConverged(t, e, 2, "web:2")
		})
	}
}

// The new replicas of a scale are not the update's tasks: one that cannot
// start yet does not keep the update from completing.
func TestScaleUpCompletesWithoutWaitingForNewReplicas(t *testing.T) {
	e := newEnv(t)
	e.agent.set(func(a *agent) { a.hold = func(t *api.Task) bool { return t.Slot > 2 } })
	e.seed(replicatedSpec(2, "web:1", updateConfig(1, 0, time.Hour, pause)))
	e.changeSpec(func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 4 })
	// The replicated reconciler fills the new slots.
	err := e.st.Update(e.ctx, func(tx store.Tx) error {
		svc := tx.Service(svcID)
		for slot := uint64(3); slot <= 4; slot++ {
			if err := tx.Create(reconcile.NewTask(svc, slot, "", time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.reconcile(e.ctx, e.sup)
	e.waitState(api.UpdateStatus_STATE_COMPLETED)
	for _, task := range e.tasks() {
		if task.SpecVersion != 2 || !reconcile.MeantToRun(task) {
			t.Errorf("task %s of slot %d: spec_version %d desired %v, want 2 and meant to run", task.Id, task.Slot, task.SpecVersion, task.DesiredState)
		}
	}
}
