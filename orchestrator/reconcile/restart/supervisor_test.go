package restart

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a store with one node and one service, and a Supervisor whose
// clock the test sets.
type fixture struct {
	s   *store.MemoryStore
	sup *Supervisor
	now time.Time
	svc *api.Service
}

func newFixture(t *testing.T, policy *api.RestartPolicy, global bool) *fixture {
	t.Helper()
	f := &fixture{s: storetest.New(), now: t0}
	f.sup = NewSupervisor(f.s, slog.New(slog.DiscardHandler))
	f.sup.now = func() time.Time { return f.now }
	f.svc = reconciletest.ReplicatedService("svc", 1, reconciletest.WithRestart(policy))
	if global {
		f.svc = reconciletest.GlobalService("svc", reconciletest.WithRestart(policy))
	}
	reconciletest.Create(t, f.s, reconciletest.Node("n1"), f.svc)
	return f
}

func (f *fixture) update(t *testing.T, fn func(store.Tx) error) {
	t.Helper()
	reconciletest.Update(t, f.s, fn)
}

// addTask stores a task of slot 1 (global: of node n1) that ended in state
// at end, desired desired.
func (f *fixture) addTask(t *testing.T, state, desired api.TaskState, end time.Time) *api.Task {
	t.Helper()
	slot := uint64(1)
	if reconcile.IsGlobal(f.svc) {
		slot = 0
	}
	task := reconcile.NewTask(f.svc, slot, "n1", end)
	task.DesiredState = desired
	task.Status = &api.TaskStatus{State: state, Timestamp: timestamppb.New(end)}
	f.update(t, func(tx store.Tx) error { return tx.Create(task) })
	return task
}

// restart runs Restart on task id in a transaction and returns what it
// returned.
func (f *fixture) restart(t *testing.T, id string, cause Cause) (*api.Task, *Delayed) {
	t.Helper()
	var repl *api.Task
	var later *Delayed
	f.update(t, func(tx store.Tx) error {
		task := tx.Task(id)
		var slot reconcile.Slot
		for _, o := range tx.TasksByService(task.ServiceId) {
			if KeyOf(o) == KeyOf(task) {
				slot = append(slot, o)
			}
		}
		var err error
		repl, later, err = f.sup.Restart(tx, f.svc, slot, task, cause)
		return err
	})
	return repl, later
}

func (f *fixture) task(id string) *api.Task {
	var t *api.Task
	f.s.View(func(tx store.ReadTx) { t = tx.Task(id) })
	return t
}

func (f *fixture) count() int {
	var n int
	f.s.View(func(tx store.ReadTx) { n = len(tx.Tasks()) })
	return n
}

func TestRestartConditions(t *testing.T) {
	const (
		running  = api.TaskState_TASK_STATE_RUNNING
		complete = api.TaskState_TASK_STATE_COMPLETE
		shutdown = api.TaskState_TASK_STATE_SHUTDOWN
		failed   = api.TaskState_TASK_STATE_FAILED
		rejected = api.TaskState_TASK_STATE_REJECTED
		condAny  = api.RestartPolicy_CONDITION_ANY
		onFail   = api.RestartPolicy_CONDITION_ON_FAILURE
		none     = api.RestartPolicy_CONDITION_NONE
	)
	for _, tc := range []struct {
		name        string
		condition   api.RestartPolicy_Condition
		ended       api.TaskState
		cause       Cause
		wantDesired api.TaskState
		wantNew     bool
	}{
		{"any restarts a failure", condAny, failed, Ended, shutdown, true},
		{"any restarts a completion", condAny, complete, Ended, shutdown, true},
		{"any restarts a rejection", condAny, rejected, Ended, shutdown, true},
		{"on-failure restarts a failure", onFail, failed, Ended, shutdown, true},
		{"on-failure restarts an unasked shutdown", onFail, shutdown, Ended, shutdown, true},
		{"on-failure keeps a completion", onFail, complete, Ended, complete, false},
		{"none keeps a failure", none, failed, Ended, complete, false},
		{"none keeps a completion", none, complete, Ended, complete, false},
		{"node loss moves the task whatever the policy", none, running, NodeLost, shutdown, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &api.RestartPolicy{Condition: tc.condition, Delay: durationpb.New(0)}, false)
			old := f.addTask(t, tc.ended, api.TaskState_TASK_STATE_RUNNING, t0)
			repl, later := f.restart(t, old.Id, tc.cause)
			if got := f.task(old.Id).DesiredState; got != tc.wantDesired {
				t.Errorf("old task desired %v, want %v", got, tc.wantDesired)
			}
			if later != nil {
				t.Errorf("delay 0 held the slot: %+v", later)
			}
			if (repl != nil) != tc.wantNew {
				t.Fatalf("replacement %v, want one: %v", repl, tc.wantNew)
			}
			if repl == nil {
				if n := f.count(); n != 1 {
					t.Errorf("%d tasks in the store, want the old one only", n)
				}
				return
			}
			got := f.task(repl.Id)
			if got.Slot != 1 || got.NodeId != "" || got.DesiredState != api.TaskState_TASK_STATE_RUNNING ||
				got.Status.GetState() != api.TaskState_TASK_STATE_PENDING {
				t.Errorf("replacement slot %d node %q desired %v state %v; want slot 1, no node, RUNNING, PENDING",
					got.Slot, got.NodeId, got.DesiredState, got.Status.GetState())
			}
		})
	}
}

func TestRestartDelay(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delay     *durationpb.Duration
		cause     Cause
		wantDelay time.Duration // 0: replaced in the same transaction
	}{
		{"unset delay is the default", nil, Ended, DefaultDelay},
		{"explicit delay", durationpb.New(time.Minute), Ended, time.Minute},
		{"zero delay is immediate", durationpb.New(0), Ended, 0},
		{"node loss ignores the delay", durationpb.New(time.Minute), NodeLost, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &api.RestartPolicy{Delay: tc.delay}, false)
			old := f.addTask(t, api.TaskState_TASK_STATE_FAILED, api.TaskState_TASK_STATE_RUNNING, t0)
			repl, later := f.restart(t, old.Id, tc.cause)
			if tc.wantDelay == 0 {
				if repl == nil || later != nil {
					t.Fatalf("replacement %v, delayed %v; want an immediate replacement", repl, later)
				}
				return
			}
			if repl != nil || later == nil {
				t.Fatalf("replacement %v, delayed %v; want a delayed one", repl, later)
			}
			if want := t0.Add(tc.wantDelay); !later.Due.Equal(want) {
				t.Errorf("due %v, want %v", later.Due, want)
			}
			if later.Key != (Key{ServiceID: "svc", Slot: 1}) || later.Replaces != old.Id {
				t.Errorf("delayed %+v names the wrong slot or task", later)
			}
		})
	}
}

func TestRestartMaxAttempts(t *testing.T) {
	const failed = api.TaskState_TASK_STATE_FAILED
	for _, tc := range []struct {
		name    string
		policy  *api.RestartPolicy
		history []time.Duration // ends of earlier attempts, before t0
		other   int             // earlier tasks stopped by a manager (not attempts)
		oldSpec int             // earlier attempts of an older spec_version
		wantNew bool
	}{
		{"unlimited", &api.RestartPolicy{}, []time.Duration{1, 2, 3, 4}, 0, 0, true},
		{"under the limit", &api.RestartPolicy{MaxAttempts: 3}, []time.Duration{time.Minute, 2 * time.Minute}, 0, 0, true},
		{"at the limit", &api.RestartPolicy{MaxAttempts: 2}, []time.Duration{time.Minute, 2 * time.Minute}, 0, 0, false},
		{"window forgets old attempts", &api.RestartPolicy{MaxAttempts: 2, Window: durationpb.New(90 * time.Second)},
			[]time.Duration{time.Minute, 2 * time.Minute}, 0, 0, true},
		{"window counts recent attempts", &api.RestartPolicy{MaxAttempts: 2, Window: durationpb.New(time.Hour)},
			[]time.Duration{time.Minute, 2 * time.Minute}, 0, 0, false},
		{"manager stops are not attempts", &api.RestartPolicy{MaxAttempts: 1}, nil, 3, 0, true},
		{"a new spec starts afresh", &api.RestartPolicy{MaxAttempts: 1}, nil, 0, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.policy.Delay = durationpb.New(0)
			f := newFixture(t, tc.policy, false)
			for _, ago := range tc.history {
				f.addTask(t, failed, api.TaskState_TASK_STATE_SHUTDOWN, t0.Add(-ago))
			}
			for range tc.other {
				f.addTask(t, api.TaskState_TASK_STATE_SHUTDOWN, api.TaskState_TASK_STATE_SHUTDOWN, t0)
			}
			for range tc.oldSpec {
				old := f.addTask(t, failed, api.TaskState_TASK_STATE_SHUTDOWN, t0)
				f.update(t, func(tx store.Tx) error {
					o := tx.Task(old.Id)
					o.SpecVersion = 0
					return tx.Update(o)
				})
			}
			cur := f.addTask(t, failed, api.TaskState_TASK_STATE_RUNNING, t0)
			repl, _ := f.restart(t, cur.Id, Ended)
			if (repl != nil) != tc.wantNew {
				t.Fatalf("replacement %v, want one: %v", repl, tc.wantNew)
			}
			want := api.TaskState_TASK_STATE_SHUTDOWN
			if !tc.wantNew {
				want = api.TaskState_TASK_STATE_COMPLETE
			}
			if got := f.task(cur.Id).DesiredState; got != want {
				t.Errorf("old task desired %v, want %v", got, want)
			}
		})
	}
}

func TestRestartTwiceIsHarmless(t *testing.T) {
	f := newFixture(t, &api.RestartPolicy{Delay: durationpb.New(0)}, false)
	old := f.addTask(t, api.TaskState_TASK_STATE_FAILED, api.TaskState_TASK_STATE_RUNNING, t0)
	if repl, _ := f.restart(t, old.Id, Ended); repl == nil {
		t.Fatal("first restart made no replacement")
	}
	if repl, later := f.restart(t, old.Id, Ended); repl != nil || later != nil {
		t.Fatalf("second restart made %v / %v", repl, later)
	}
	if n := f.count(); n != 2 {
		t.Fatalf("%d tasks, want the old one and one replacement", n)
	}
}

// A slot another task still holds gets no replacement, now or later: the
// ended task is only stopped. The case that matters most is a start-first
// update whose new task failed while the old one still runs the slot.
func TestRestartLeavesAnOccupiedSlot(t *testing.T) {
	const (
		running  = api.TaskState_TASK_STATE_RUNNING
		complete = api.TaskState_TASK_STATE_COMPLETE
		failed   = api.TaskState_TASK_STATE_FAILED
	)
	for _, tc := range []struct {
		name   string
		global bool
		delay  time.Duration
		cause  Cause
		// other is the state, desired and observed, of the task holding
		// the slot; otherOld says it runs the previous spec (start-first).
		other    api.TaskState
		otherOld bool
	}{
		{"same spec running", false, 0, Ended, running, false},
		{"start-first: old task runs", false, 0, Ended, running, true},
		{"start-first, delayed restart", false, time.Minute, Ended, running, true},
		{"start-first, node lost", false, 0, NodeLost, running, true},
		{"completed for good", false, 0, Ended, complete, false},
		{"global start-first", true, 0, Ended, running, true},
		{"global start-first, delayed restart", true, time.Minute, Ended, running, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &api.RestartPolicy{Delay: durationpb.New(tc.delay)}, tc.global)
			f.addTask(t, tc.other, tc.other, t0)
			if tc.otherOld {
				f.svc.SpecVersion++ // the tasks made from here on are the update's
			}
			ended := f.addTask(t, failed, running, t0)
			if repl, later := f.restart(t, ended.Id, tc.cause); repl != nil || later != nil {
				t.Fatalf("restart in a slot another task holds made %v / %v", repl, later)
			}
			if got := f.task(ended.Id).DesiredState; got != api.TaskState_TASK_STATE_SHUTDOWN {
				t.Fatalf("ended task desired %v, want SHUTDOWN", got)
			}
			if n := f.count(); n != 2 {
				t.Fatalf("%d tasks, want the two there were", n)
			}
		})
	}
}

func TestRestartGlobal(t *testing.T) {
	for _, tc := range []struct {
		name         string
		availability api.NodeAvailability
		wantNew      bool
	}{
		{"active node gets the replacement", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE, true},
		{"paused node gets none", api.NodeAvailability_NODE_AVAILABILITY_PAUSE, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &api.RestartPolicy{Delay: durationpb.New(0)}, true)
			f.update(t, func(tx store.Tx) error {
				n := tx.Node("n1")
				n.Spec = &api.NodeSpec{Availability: tc.availability}
				return tx.Update(n)
			})
			old := f.addTask(t, api.TaskState_TASK_STATE_FAILED, api.TaskState_TASK_STATE_RUNNING, t0)
			repl, _ := f.restart(t, old.Id, Ended)
			if (repl != nil) != tc.wantNew {
				t.Fatalf("replacement %v, want one: %v", repl, tc.wantNew)
			}
			if repl != nil && (repl.NodeId != "n1" || repl.Slot != 0) {
				t.Errorf("replacement on node %q slot %d, want n1 slot 0", repl.NodeId, repl.Slot)
			}
		})
	}
}

func TestDelayedReplacementIsCreatedByRun(t *testing.T) {
	f := newFixture(t, &api.RestartPolicy{Delay: durationpb.New(time.Minute)}, false)
	old := f.addTask(t, api.TaskState_TASK_STATE_FAILED, api.TaskState_TASK_STATE_RUNNING, t0)
	_, later := f.restart(t, old.Id, Ended)
	f.sup.Schedule(later)
	f.sup.Schedule(later) // asked twice
	key := Key{ServiceID: "svc", Slot: 1}
	if !f.sup.Held(key) {
		t.Fatal("slot not held during the delay")
	}
	// Before the due time, Run creates nothing: check with its own step.
	if due, _ := f.sup.due(); len(due) != 0 {
		t.Fatalf("%d restarts due before the delay passed", len(due))
	}
	f.now = t0.Add(time.Minute) // before Run starts: no race

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.sup.Run(ctx) }()
	reconciletest.WaitFor(t, f.s, "the delayed replacement", func(tx store.ReadTx) bool { return len(tx.Tasks()) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.sup.Held(key) {
		t.Error("slot still held after the replacement")
	}
}

func TestDelayedReplacementSkipsAFilledSlot(t *testing.T) {
	f := newFixture(t, &api.RestartPolicy{Delay: durationpb.New(time.Minute)}, false)
	old := f.addTask(t, api.TaskState_TASK_STATE_FAILED, api.TaskState_TASK_STATE_RUNNING, t0)
	_, later := f.restart(t, old.Id, Ended)
	f.sup.Schedule(later)
	// Someone (a new leader's reconciler) filled the slot meanwhile.
	filler := f.addTask(t, api.TaskState_TASK_STATE_PENDING, api.TaskState_TASK_STATE_RUNNING, t0)
	f.now = t0.Add(time.Minute)
	due, _ := f.sup.due()
	f.sup.start(context.Background(), due)
	if n := f.count(); n != 2 {
		t.Fatalf("%d tasks, want the old one and %s only", n, filler.Id)
	}
	if f.sup.Held(later.Key) {
		t.Error("hold kept after it was served")
	}
}

func TestHoldExpires(t *testing.T) {
	f := newFixture(t, nil, false)
	k := Key{ServiceID: "svc", Slot: 3}
	f.sup.Schedule(&Delayed{Key: k, Due: t0})
	if !f.sup.Held(k) {
		t.Fatal("not held")
	}
	f.now = t0.Add(HeldGrace)
	if f.sup.Held(k) {
		t.Fatal("a hold nobody served still counts after its grace")
	}
	f.sup.Cancel(k)
	f.sup.mu.Lock()
	defer f.sup.mu.Unlock()
	if len(f.sup.held) != 0 {
		t.Fatal("cancel left the hold")
	}
}
