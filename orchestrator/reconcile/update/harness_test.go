package update

// This file holds the tests' stand-ins for the rest of a manager: a store
// seeded with a service and its running tasks, the Control API's spec
// change, a fake agent that runs and stops tasks, a fake reconciler that
// hands the dirty slots to the Supervisor on every batch (as the real ones
// do on every pass), a recorder of every committed batch, and waits on the
// store that fail the test rather than hang.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

const (
	svcID = "svc-web"
	// guard bounds every wait: reaching it is a failure, not a timing
	// expectation.
	guard = 20 * time.Second
)

// env is one test's cluster: a store, a fake agent and a Supervisor whose
// waits are recorded.
type env struct {
	t     testing.TB
	ctx   context.Context
	st    *store.MemoryStore
	sup   *Supervisor
	agent *agent

	afterMu sync.Mutex
	afters  []time.Duration
	// afterSet is signalled after each timer the updaters ask for.
	afterSet chan struct{}
	wg       sync.WaitGroup
	// close stops everything the env started; it runs on cleanup too.
	close func()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	e := &env{t: t, ctx: ctx, st: storetest.New(), agent: newAgent(), afterSet: make(chan struct{}, 1)}
	e.sup = e.newSupervisor()
	e.wg.Go(func() { e.agent.run(ctx, e.st) })
	e.close = sync.OnceFunc(func() {
		cancel()
		e.sup.Wait()
		e.wg.Wait()
	})
	t.Cleanup(e.close)
	return e
}

// newSupervisor makes a Supervisor on the env's store whose timers are
// recorded, as a new leader would.
func (e *env) newSupervisor() *Supervisor {
	sup := NewSupervisor(e.st, nil)
	sup.clock.after = func(d time.Duration) <-chan time.Time {
		e.afterMu.Lock()
		e.afters = append(e.afters, d)
		e.afterMu.Unlock()
		select {
		case e.afterSet <- struct{}{}:
		default:
		}
		return time.After(d)
	}
	return sup
}

// waitTimers waits until the updaters have asked for n timers for which
// match holds, failing rather than hanging.
func (e *env) waitTimers(n int, match func(time.Duration) bool) {
	e.t.Helper()
	for {
		e.afterMu.Lock()
		afters := slices.Clone(e.afters)
		e.afterMu.Unlock()
		got := 0
		for _, d := range afters {
			if match(d) {
				got++
			}
		}
		if got >= n {
			return
		}
		select {
		case <-e.afterSet:
		case <-time.After(guard):
			e.t.Fatalf("gave up waiting for %d timers; asked for %v", n, afters)
		}
	}
}

// waits counts the timers of exactly d the updaters asked for.
func (e *env) waits(d time.Duration) int {
	e.afterMu.Lock()
	defer e.afterMu.Unlock()
	n := 0
	for _, a := range e.afters {
		if a == d {
			n++
		}
	}
	return n
}

// reconcile runs a fake reconciler for sup until ctx ends or the returned
// stop is called; stop returns once the reconciler has.
func (e *env) reconcile(ctx context.Context, sup *Supervisor) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	e.wg.Go(func() {
		defer close(done)
		runReconciler(ctx, e.st, sup)
	})
	return func() { cancel(); <-done }
}

func updateConfig(parallelism uint64, delay, monitor time.Duration, action api.UpdateConfig_FailureAction) *api.UpdateConfig {
	return &api.UpdateConfig{
		Parallelism:   parallelism,
		Delay:         durationpb.New(delay),
		Monitor:       durationpb.New(monitor),
		FailureAction: action,
	}
}

func replicatedSpec(replicas uint64, image string, uc *api.UpdateConfig) *api.ServiceSpec {
	return &api.ServiceSpec{
		Annotations: &api.Annotations{Name: "web"},
		Task:        &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
		Mode:        &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
		Update:      uc,
	}
}

func globalSpec(image string, uc *api.UpdateConfig) *api.ServiceSpec {
	return &api.ServiceSpec{
		Annotations: &api.Annotations{Name: "agentd"},
		Task:        &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
		Mode:        &api.ServiceSpec_Global{Global: &api.GlobalService{}},
		Update:      uc,
	}
}

// seed creates nodes, the service at spec_version 1 and its tasks,
// RUNNING: one per slot (replicated) or per node (global).
func (e *env) seed(spec *api.ServiceSpec, nodes ...*api.Node) {
	e.t.Helper()
	svc := &api.Service{Id: svcID, Spec: spec, SpecVersion: 1}
	err := e.st.Update(e.ctx, func(tx store.Tx) error {
		for _, n := range nodes {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		if err := tx.Create(svc); err != nil {
			return err
		}
		var tasks []*api.Task
		if reconcile.IsGlobal(svc) {
			for _, n := range nodes {
				tasks = append(tasks, reconcile.NewTask(svc, 0, n.Id, time.Now()))
			}
		} else {
			for slot := uint64(1); slot <= spec.GetReplicated().GetReplicas(); slot++ {
				t := reconcile.NewTask(svc, slot, "", time.Now())
				t.NodeId = fmt.Sprintf("node-%d", slot%3)
				tasks = append(tasks, t)
			}
		}
		for _, t := range tasks {
			reconcile.SetStatus(t, api.TaskState_TASK_STATE_RUNNING, "started", time.Now())
			if err := tx.Create(t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("seed: %v", err)
	}
}

func readyNode(id string, availability api.NodeAvailability) *api.Node {
	return &api.Node{
		Id:     id,
		Spec:   &api.NodeSpec{Availability: availability},
		Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_READY},
	}
}

// changeSpec does what the Control API does on `service update`: keep the
// old spec as previous_spec, bump spec_version, mark the update started.
func (e *env) changeSpec(mutate func(*api.ServiceSpec)) {
	e.t.Helper()
	err := e.st.Update(e.ctx, func(tx store.Tx) error {
		svc := tx.Service(svcID)
		svc.PreviousSpec = proto.Clone(svc.Spec).(*api.ServiceSpec)
		svc.PreviousSpecVersion = svc.SpecVersion
		mutate(svc.Spec)
		svc.SpecVersion++
		svc.UpdateStatus = &api.UpdateStatus{
			State:     api.UpdateStatus_STATE_UPDATING,
			StartedAt: timestamppb.Now(),
			Message:   MessageInProgress,
		}
		return tx.Update(svc)
	})
	if err != nil {
		e.t.Fatalf("change spec: %v", err)
	}
}

func (e *env) service() *api.Service {
	var svc *api.Service
	e.st.View(func(tx store.ReadTx) { svc = tx.Service(svcID) })
	return svc
}

func (e *env) tasks() []*api.Task {
	var tasks []*api.Task
	e.st.View(func(tx store.ReadTx) { tasks = tx.TasksByService(svcID) })
	return tasks
}

// waitFor returns once cond holds on the store, and fails the test if it
// does not within the guard.
func (e *env) waitFor(what string, cond func(store.ReadTx) bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, guard)
	defer cancel()
	var ok bool
	batches := e.st.ViewAndWatch(ctx, func(tx store.ReadTx) { ok = cond(tx) })
	for !ok {
		if _, open := <-batches; !open {
			e.t.Fatalf("gave up waiting for %s", what)
		}
		e.st.View(func(tx store.ReadTx) { ok = cond(tx) })
	}
}

func (e *env) waitState(want api.UpdateStatus_State) {
	e.t.Helper()
	e.waitFor(want.String(), func(tx store.ReadTx) bool {
		return tx.Service(svcID).GetUpdateStatus().GetState() == want
	})
}

// waitIdle waits for sup's updaters to return, failing rather than hanging.
func (e *env) waitIdle(sup *Supervisor) {
	e.t.Helper()
	done := make(chan struct{})
	go func() { sup.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(guard):
		e.t.Fatal("updaters did not return")
	}
}

// agent stands in for the workers: it runs tasks meant to run (or fails
// the chosen ones) and stops those asked to stop, once per store batch.
type agent struct {
	mu               sync.Mutex
	fail             func(*api.Task) bool // end in FAILED instead of running
	failAfterRunning func(*api.Task) bool // run, then fail
	hold             func(*api.Task) bool // leave where they are for now
	poke             chan struct{}
	// batched makes a pass one transaction (for benchmarks): faster, but
	// a stop and a start may then land in one batch.
	batched bool
}

func newAgent() *agent { return &agent{poke: make(chan struct{}, 1)} }

// set changes the agent's rules and has it look at every task again.
func (a *agent) set(fn func(a *agent)) {
	a.mu.Lock()
	fn(a)
	a.mu.Unlock()
	select {
	case a.poke <- struct{}{}:
	default:
	}
}

func (a *agent) run(ctx context.Context, st *store.MemoryStore) {
	batches := st.Watch(ctx)
	for {
		a.pass(ctx, st)
		select {
		case <-ctx.Done():
			return
		case _, ok := <-batches:
			if !ok {
				return
			}
		case <-a.poke:
		}
	}
}

// pass moves every task that needs it one state on, each in its own
// transaction as separate status reports would be, stops before starts
// (so a stop never hides behind a start in one batch).
func (a *agent) pass(ctx context.Context, st *store.MemoryStore) {
	if a.batched {
		_ = st.Update(ctx, func(tx store.Tx) error {
			for _, t := range tx.Tasks() {
				if next, ok := a.next(t); ok {
					reconcile.SetStatus(t, next, next.String(), time.Now())
					if err := tx.Update(t); err != nil {
						return err
					}
				}
			}
			return nil
		})
		return
	}
	var tasks []*api.Task
	st.View(func(tx store.ReadTx) { tasks = tx.Tasks() })
	slices.SortStableFunc(tasks, func(x, y *api.Task) int {
		return cmp.Compare(y.DesiredState, x.DesiredState)
	})
	for _, t := range tasks {
		_ = st.Update(ctx, func(tx store.Tx) error {
			cur := tx.Task(t.Id)
			if cur == nil {
				return nil
			}
			next, ok := a.next(cur)
			if !ok {
				return nil
			}
			if cur.NodeId == "" {
				cur.NodeId = "node-1"
			}
			reconcile.SetStatus(cur, next, next.String(), time.Now())
			return tx.Update(cur)
		})
	}
}

// next is the state the agent moves t to, if any.
func (a *agent) next(t *api.Task) (api.TaskState, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	is := func(f func(*api.Task) bool) bool { return f != nil && f(t) }
	state := t.GetStatus().GetState()
	switch {
	case !reconcile.MeantToRun(t):
		if state <= api.TaskState_TASK_STATE_RUNNING {
			return api.TaskState_TASK_STATE_SHUTDOWN, true
		}
	case state < api.TaskState_TASK_STATE_RUNNING && !is(a.hold):
		if is(a.fail) {
			return api.TaskState_TASK_STATE_FAILED, true
		}
		return api.TaskState_TASK_STATE_RUNNING, true
	case state == api.TaskState_TASK_STATE_RUNNING && is(a.failAfterRunning):
		return api.TaskState_TASK_STATE_FAILED, true
	}
	return state, false
}

func image(t *api.Task) string { return t.GetSpec().GetContainer().GetImage() }

// runReconciler hands sup the service's dirty slots after every batch, as
// the replicated and global reconcilers do on every pass; with no dirty
// slot, it still calls while an update is in progress.
func runReconciler(ctx context.Context, st *store.MemoryStore, sup *Supervisor) {
	batches := st.Watch(ctx)
	for {
		var svc *api.Service
		var tasks []*api.Task
		st.View(func(tx store.ReadTx) {
			svc = tx.Service(svcID)
			tasks = tx.TasksByService(svcID)
		})
		if svc != nil {
			if slots := dirtySlots(svc, tasks); len(slots) > 0 || reconcile.UpdateInProgress(svc) {
				sup.Update(ctx, svc, slots)
			}
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-batches:
			if !ok {
				return
			}
		}
	}
}

// dirtySlots groups tasks into slots and keeps those holding a task that
// is out of date and still holds its slot.
func dirtySlots(svc *api.Service, tasks []*api.Task) []reconcile.Slot {
	bySlot := make(map[slotKey]reconcile.Slot)
	for _, t := range tasks {
		bySlot[keyOf(t)] = append(bySlot[keyOf(t)], t)
	}
	var out []reconcile.Slot
	for _, sl := range bySlot {
		if slices.ContainsFunc(sl, func(t *api.Task) bool {
			return reconcile.OccupiesSlot(t) && reconcile.IsTaskDirty(svc, t)
		}) {
			out = append(out, sl)
		}
	}
	return out
}

// recorder keeps every batch committed after it started, with the tasks
// there were then, so a test can replay the update afterwards.
type recorder struct {
	initial []*api.Task
	mu      sync.Mutex
	batches []store.Batch
	seen    chan struct{}
}

func (e *env) record() *recorder {
	r := &recorder{seen: make(chan struct{}, 1)}
	batches := e.st.ViewAndWatch(e.ctx, func(tx store.ReadTx) { r.initial = tx.TasksByService(svcID) })
	e.wg.Go(func() {
		for b := range batches {
			r.mu.Lock()
			r.batches = append(r.batches, b)
			r.mu.Unlock()
			select {
			case r.seen <- struct{}{}:
			default:
			}
		}
	})
	return r
}

// recorded returns the batches r recorded, once the recorder has caught up with
// the store.
func (e *env) recorded(r *recorder) []store.Batch {
	e.t.Helper()
	want := e.st.AppliedIndex()
	for {
		r.mu.Lock()
		n := len(r.batches)
		caught := n > 0 && r.batches[n-1].Index >= want
		r.mu.Unlock()
		if caught {
			break
		}
		select {
		case <-r.seen:
		case <-time.After(guard):
			e.t.Fatal("recorder did not catch up")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

// replay walks the recorded batches, calling fn after each with the
// service's tasks as they were then (read-only).
func replay(r *recorder, batches []store.Batch, fn func(b store.Batch, tasks map[string]*api.Task)) {
	tasks := make(map[string]*api.Task)
	for _, t := range r.initial {
		tasks[t.Id] = t
	}
	for _, b := range batches {
		for _, ev := range b.Events {
			t, ok := ev.Object.(*api.Task)
			if !ok || t.ServiceId != svcID {
				continue
			}
			if ev.Action == api.StoreAction_KIND_DELETE {
				delete(tasks, t.Id)
			} else {
				tasks[t.Id] = t
			}
		}
		fn(b, tasks)
	}
}

// meantToRunBySlot counts the tasks meant to run in each slot.
func meantToRunBySlot(tasks map[string]*api.Task) map[slotKey]int {
	n := make(map[slotKey]int)
	for _, t := range tasks {
		if reconcile.MeantToRun(t) {
			n[keyOf(t)]++
		}
	}
	return n
}
