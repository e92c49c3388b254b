package replicated

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/reconcile/restart"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

func TestScale(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []uint64
	}{
		{"up from nothing", []uint64{5}},
		{"down removes the highest slots", []uint64{10, 3}},
		{"up again reuses the freed slots", []uint64{10, 3, 10}},
		{"to zero and back", []uint64{4, 0, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.start(t)
			h.update(t, func(tx store.Tx) error { return tx.Create(service("web", 0, nil)) })
			removed := make(map[string]bool) // by earlier steps
			for _, n := range tc.steps {
				h.setReplicas(t, "web", n)
				h.waitSlots(t, "web", seq(1, n))
				for _, task := range h.tasks("web") {
					if task.DesiredState != api.TaskState_TASK_STATE_REMOVE || removed[task.Id] {
						continue
					}
					removed[task.Id] = true
					if task.Slot <= n {
						t.Errorf("replicas %d: slot %d was removed, not one of the highest", n, task.Slot)
					}
				}
			}
		})
	}
}

func TestScaleDownRemovesWholeSlots(t *testing.T) {
	h := newHarness(t, nil)
	h.update(t, func(tx store.Tx) error {
		svc := service("web", 2, nil)
		if err := tx.Create(svc); err != nil {
			return err
		}
		for slot := uint64(1); slot <= 3; slot++ {
			if err := tx.Create(reconcile.NewTask(svc, slot, "", time.Now())); err != nil {
				return err
			}
		}
		// Slot 3's history.
		old := reconcile.NewTask(svc, 3, "", time.Now())
		old.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Create(old)
	})
	h.start(t)
	h.waitSlots(t, "web", seq(1, 2))
	for _, task := range h.tasks("web") {
		if task.Slot == 3 && task.DesiredState != api.TaskState_TASK_STATE_REMOVE {
			t.Errorf("task %s of removed slot 3 desired %v, want REMOVE", task.Id, task.DesiredState)
		}
	}
}

// A slot whose task stopped for a delayed restart is vacant to a leader that did not hold it
// (the hold left with the former leader). Scaling down keeps slots 1..replicas all the same:
// the vacant low slot gets its replacement and the occupied slots above go, as they would have
// had the leader not moved — whether more slots are occupied than wanted or as many, and when
// the removals take more than one transaction.
func TestScaleDownKeepsAVacantLowSlot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		occupied []uint64
		// templateBytes, when set, makes the template this large, so that a transaction
		// holds only a few task writes.
		templateBytes int
	}{
		{"more occupied than replicas", []uint64{1, 3, 4}, 0},
		{"as many occupied as replicas", []uint64{1, 3}, 0},
		// Four task writes per transaction: the first removes slots 7 to 4 and leaves as
		// many occupied (1 and 3) as replicas.
		{"removals over several transactions", []uint64{1, 3, 4, 5, 6, 7}, reconcile.MaxBytesPerUpdate/4 - 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			svc := service("web", 2, &api.RestartPolicy{Delay: durationpb.New(time.Hour)})
			if tc.templateBytes > 0 {
				svc.Spec.Task.GetContainer().Env = []string{"PAD=" + strings.Repeat("x", tc.templateBytes)}
			}
			h.update(t, func(tx store.Tx) error { return tx.Create(svc) })
			for _, slot := range tc.occupied {
				h.update(t, func(tx store.Tx) error { return tx.Create(reconcile.NewTask(svc, slot, "", time.Now())) })
			}
			h.update(t, func(tx store.Tx) error {
				failed := reconcile.NewTask(svc, 2, "", time.Now())
				reconcile.SetStatus(failed, api.TaskState_TASK_STATE_FAILED, "exit 1", time.Now())
				failed.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
				return tx.Create(failed)
			})
			h.start(t)
			h.waitSlots(t, "web", seq(1, 2))
			h.settle(t)
			for _, task := range h.tasks("web") {
				if task.Slot > 2 && task.DesiredState != api.TaskState_TASK_STATE_REMOVE {
					t.Errorf("task %s of slot %d desired %v, want REMOVE", task.Id, task.Slot, task.DesiredState)
				}
			}
			var got []uint64
			for _, task := range h.tasks("web") {
				if reconcile.MeantToRun(task) {
					got = append(got, task.Slot)
				}
			}
			if slices.Sort(got); !slices.Equal(got, seq(1, 2)) {
				t.Errorf("slots %v meant to run after settling, want 1..2", got)
			}
		})
	}
}

func TestNodeLossMovesTasks(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(tx store.Tx) error
	}{
		{"drain", func(tx store.Tx) error {
			n := tx.Node("a")
			n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN
			return tx.Update(n)
		}},
		{"down", func(tx store.Tx) error {
			n := tx.Node("a")
			n.Status.State = api.NodeState_NODE_STATE_DOWN
			return tx.Update(n)
		}},
		{"removed", func(tx store.Tx) error { return tx.Delete(tx.Node("a")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.start(t)
			// A long delay and one attempt: a node loss must ignore both.
			policy := &api.RestartPolicy{Delay: durationpb.New(time.Hour), MaxAttempts: 1}
			reconciletest.Create(t, h.s, reconciletest.Node("a"), service("web", 3, policy))
			h.waitSlots(t, "web", seq(1, 3))
			h.schedule(t, "web", "a")
			before := h.tasks("web")

			h.update(t, tc.lose)
			reconciletest.WaitFor(t, h.s, "replacements", func(tx store.ReadTx) bool {
				var fresh []uint64
				for _, task := range tx.TasksByService("web") {
					if reconcile.MeantToRun(task) && task.NodeId == "" {
						fresh = append(fresh, task.Slot)
					}
				}
				slices.Sort(fresh)
				return slices.Equal(fresh, seq(1, 3))
			})
			h.waitSlots(t, "web", seq(1, 3))
			for _, old := range before {
				var got *api.Task
				h.s.View(func(tx store.ReadTx) { got = tx.Task(old.Id) })
				if got.DesiredState != api.TaskState_TASK_STATE_SHUTDOWN {
					t.Errorf("old task of slot %d desired %v, want SHUTDOWN", got.Slot, got.DesiredState)
				}
			}
		})
	}
}

func TestEndedTasksFollowTheRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		name        string
		policy      *api.RestartPolicy
		end         api.TaskState
		wantDesired api.TaskState
		wantNew     bool
	}{
		{"failure restarted", &api.RestartPolicy{Delay: durationpb.New(0)}, api.TaskState_TASK_STATE_FAILED,
			api.TaskState_TASK_STATE_SHUTDOWN, true},
		{"failure restarted after a delay", &api.RestartPolicy{Delay: durationpb.New(time.Millisecond)},
			api.TaskState_TASK_STATE_FAILED, api.TaskState_TASK_STATE_SHUTDOWN, true},
		{"completion kept for good", &api.RestartPolicy{Condition: api.RestartPolicy_CONDITION_ON_FAILURE},
			api.TaskState_TASK_STATE_COMPLETE, api.TaskState_TASK_STATE_COMPLETE, false},
		{"no restarts", &api.RestartPolicy{Condition: api.RestartPolicy_CONDITION_NONE},
			api.TaskState_TASK_STATE_FAILED, api.TaskState_TASK_STATE_COMPLETE, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.start(t)
			reconciletest.Create(t, h.s, reconciletest.Node("a"), service("web", 2, tc.policy))
			h.waitSlots(t, "web", seq(1, 2))
			h.schedule(t, "web", "a")
			var victim *api.Task
			h.update(t, func(tx store.Tx) error {
				for _, task := range tx.TasksByService("web") {
					if task.Slot == 1 {
						victim = task
					}
				}
				reconcile.SetStatus(victim, tc.end, "ended", time.Now())
				return tx.Update(victim)
			})
			reconciletest.WaitFor(t, h.s, "the policy applied", func(tx store.ReadTx) bool {
				return tx.Task(victim.Id).DesiredState == tc.wantDesired
			})
			if tc.wantNew {
				h.waitSlots(t, "web", seq(1, 2))
				return
			}
			h.settle(t)
			if got := h.tasks("web"); len(got) != 2 {
				t.Fatalf("%d tasks, want 2: a slot completed for good was refilled", len(got))
			}
		})
	}
}

func TestDelayedRestartHoldsTheSlot(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	reconciletest.Create(t, h.s, reconciletest.Node("a"), service("web", 1, &api.RestartPolicy{Delay: durationpb.New(time.Hour)}))
	h.waitSlots(t, "web", seq(1, 1))
	h.schedule(t, "web", "a")
	h.update(t, func(tx store.Tx) error {
		task := tx.TasksByService("web")[0]
		reconcile.SetStatus(task, api.TaskState_TASK_STATE_FAILED, "exit 1", time.Now())
		return tx.Update(task)
	})
	h.waitSlots(t, "web", nil)
	h.settle(t)
	if got := h.tasks("web"); len(got) != 1 {
		t.Fatalf("%d tasks during the restart delay, want the failed one only", len(got))
	}
	if !h.sup.Held(restart.Key{ServiceID: "web", Slot: 1}) {
		t.Fatal("slot 1 not held during the delay")
	}
}

func TestDirtySlotsGoToTheUpdater(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	h.update(t, func(tx store.Tx) error { return tx.Create(service("web", 3, nil)) })
	h.waitSlots(t, "web", seq(1, 3))
	h.update(t, func(tx store.Tx) error {
		s := tx.Service("web")
		s.Spec.Task.Container.Image = "nginx:2"
		s.SpecVersion++
		return tx.Update(s)
	})
	h.settle(t)
	c, ok := h.updater.Last()
	if !ok || c.Service.SpecVersion != 2 {
		t.Fatalf("updater last called with %+v (called: %v), want the service at spec_version 2", c.Service, ok)
	}
	var slots []uint64
	for _, slot := range c.Slots {
		if len(slot) != 1 {
			t.Errorf("slot of %d tasks, want 1", len(slot))
		}
		slots = append(slots, slot[0].Slot)
	}
	slices.Sort(slots)
	if !slices.Equal(slots, seq(1, 3)) {
		t.Errorf("updater got slots %v, want 1..3", slots)
	}
	if got := h.tasks("web"); len(got) != 3 {
		t.Errorf("%d tasks: the reconciler replaced tasks itself", len(got))
	}
}

// While update_status says an update or a rollback is in progress, the
// service goes to the Updater on every pass, out-of-date slots or not: only
// the Updater ends an update. Otherwise only out-of-date slots do.
func TestUpdateInProgressGoesToTheUpdater(t *testing.T) {
	for _, tc := range []struct {
		name     string
		state    api.UpdateStatus_State
		replicas uint64
		want     bool
	}{
		{"updating, no replicas", api.UpdateStatus_STATE_UPDATING, 0, true},
		{"updating, every slot up to date", api.UpdateStatus_STATE_UPDATING, 2, true},
		{"rolling back, no replicas", api.UpdateStatus_STATE_ROLLBACK_STARTED, 0, true},
		{"completed, every slot up to date", api.UpdateStatus_STATE_COMPLETED, 2, false},
		{"paused, no replicas", api.UpdateStatus_STATE_PAUSED, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			svc := service("web", tc.replicas, nil)
			svc.UpdateStatus = &api.UpdateStatus{State: tc.state}
			reconciletest.Create(t, h.s, svc)
			h.start(t)
			h.waitSlots(t, "web", seq(1, tc.replicas))
			h.settle(t)
			c, ok := h.updater.Last()
			if called := ok && c.Service.GetId() == "web"; called != tc.want {
				t.Fatalf("updater called for web: %v, want %v", called, tc.want)
			}
			if ok && len(c.Slots) != 0 {
				t.Errorf("updater handed %d slots, want none: none is out of date", len(c.Slots))
			}
		})
	}
}

func TestDeletedServiceTasksAreRemoved(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	h.update(t, func(tx store.Tx) error { return tx.Create(service("web", 4, nil)) })
	h.waitSlots(t, "web", seq(1, 4))
	h.update(t, func(tx store.Tx) error { return tx.Delete(tx.Service("web")) })
	reconciletest.WaitFor(t, h.s, "every task desired REMOVE", func(tx store.ReadTx) bool {
		for _, task := range tx.TasksByService("web") {
			if task.DesiredState != api.TaskState_TASK_STATE_REMOVE {
				return false
			}
		}
		return true
	})
}

func TestNewLeaderConvergesWithoutDuplicates(t *testing.T) {
	h := newHarness(t, nil)
	h.update(t, func(tx store.Tx) error {
		if err := tx.Create(reconciletest.Node("a")); err != nil {
			return err
		}
		svc := service("web", 5, &api.RestartPolicy{Delay: durationpb.New(time.Hour)})
		if err := tx.Create(svc); err != nil {
			return err
		}
		// Slots 1-3 run; slot 4 failed under the old leader, which held it
		// for a delayed restart it never made; slot 5 was never created.
		for slot := uint64(1); slot <= 4; slot++ {
			task := reconcile.NewTask(svc, slot, "a", time.Now())
			reconcile.SetStatus(task, api.TaskState_TASK_STATE_RUNNING, "", time.Now())
			if slot == 4 {
				reconcile.SetStatus(task, api.TaskState_TASK_STATE_FAILED, "exit 1", time.Now())
				task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
			}
			if err := tx.Create(task); err != nil {
				return err
			}
		}
		return nil
	})
	for term := range 2 {
		stop := h.start(t)
		h.waitSlots(t, "web", seq(1, 5))
		h.settle(t)
		h.waitSlots(t, "web", seq(1, 5))
		if got := len(h.tasks("web")); got != 6 {
			t.Fatalf("term %d: %d tasks, want 6 (5 meant to run and the failed one)", term, got)
		}
		stop()
	}
}

func TestTenThousandReplicasInFewTransactions(t *testing.T) {
	s, p := storetest.NewWithProposer()
	h := newHarness(t, s)
	h.start(t)
	before := p.Proposals()
	h.update(t, func(tx store.Tx) error { return tx.Create(service("big", 10000, nil)) })
	reconciletest.WaitFor(t, h.s, "10,000 tasks", func(tx store.ReadTx) bool { return len(tx.TasksByService("big")) == 10000 })
	h.waitSlots(t, "big", seq(1, 10000))
	// 1 service create + 2 chunks of 5,000 tasks, and a few more passes.
	if n := p.Proposals() - before; n > 6 {
		t.Errorf("%d transactions to create 10,000 replicas, want at most 6", n)
	}
}

func BenchmarkCreateTenThousandReplicas(b *testing.B) {
	for b.Loop() {
		s := storetest.New()
		sup := restart.NewSupervisor(s, quiet)
		r := New(s, sup, nil, quiet)
		svc := service("big", 10000, nil)
		if err := s.Update(b.Context(), func(tx store.Tx) error { return tx.Create(svc) }); err != nil {
			b.Fatal(err)
		}
		if err := r.reconcileService(b.Context(), "big"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdlePass is the cost of a pass over a 10,000-replica service
// that needs nothing: what every relevant task event costs.
func BenchmarkIdlePass(b *testing.B) {
	s := storetest.New()
	r := New(s, restart.NewSupervisor(s, quiet), nil, quiet)
	if err := s.Update(b.Context(), func(tx store.Tx) error { return tx.Create(service("big", 10000, nil)) }); err != nil {
		b.Fatal(err)
	}
	if err := r.reconcileService(b.Context(), "big"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := r.reconcileService(b.Context(), "big"); err != nil {
			b.Fatal(err)
		}
	}
}
