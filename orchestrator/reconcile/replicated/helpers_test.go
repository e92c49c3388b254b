package replicated

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/restart"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

// fakeUpdater records what the reconciler hands it.
type fakeUpdater struct {
	mu    sync.Mutex
	calls []updateCall
}

type updateCall struct {
	service *api.Service
	slots   []reconcile.Slot
}

func (u *fakeUpdater) Update(_ context.Context, s *api.Service, slots []reconcile.Slot) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, updateCall{s, slots})
}

func (u *fakeUpdater) last() (updateCall, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.calls) == 0 {
		return updateCall{}, false
	}
	return u.calls[len(u.calls)-1], true
}

// harness runs a Reconciler and its Supervisor on a store.
type harness struct {
	s       *store.MemoryStore
	sup     *restart.Supervisor
	rec     *Reconciler
	updater *fakeUpdater
	rounds  chan struct{}
}

func newHarness(t *testing.T, s *store.MemoryStore) *harness {
	t.Helper()
	if s == nil {
		s = storetest.New()
	}
	h := &harness{s: s, updater: &fakeUpdater{}, rounds: make(chan struct{}, 1)}
	h.sup = restart.NewSupervisor(s, quiet)
	return h
}

// start runs the Supervisor and a new Reconciler until the test ends (or
// the returned stop is called).
func (h *harness) start(t *testing.T) (stop func()) {
	t.Helper()
	h.rec = New(h.s, h.sup, h.updater, quiet)
	h.rec.afterReconcile = func() {
		select {
		case h.rounds <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for name, run := range map[string]func(context.Context) error{"reconciler": h.rec.Run, "supervisor": h.sup.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// settle waits for two more reconcile rounds after now, so the reconciler
// has seen everything committed before the call.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	// A round is triggered by any event; make one and wait for the round
	// it causes, twice (the first may have been under way already).
	for range 2 {
		select {
		case <-h.rounds:
		default:
		}
		h.update(t, func(tx store.Tx) error {
			return tx.Create(&api.Service{Id: api.NewID(), Spec: &api.ServiceSpec{
				Annotations: &api.Annotations{Name: "poke"},
				Mode:        &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{}},
			}})
		})
		select {
		case <-h.rounds:
		case <-time.After(30 * time.Second):
			t.Fatal("no reconcile round")
		}
	}
}

func (h *harness) update(t *testing.T, fn func(store.Tx) error) {
	t.Helper()
	if err := h.s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func service(id string, replicas uint64, policy *api.RestartPolicy) *api.Service {
	return &api.Service{
		Id:          id,
		SpecVersion: 1,
		Spec: &api.ServiceSpec{
			Annotations: &api.Annotations{Name: id},
			Task:        &api.TaskSpec{Container: &api.ContainerSpec{Image: "nginx"}, Restart: policy},
			Mode:        &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
		},
	}
}

func node(id string) *api.Node {
	return &api.Node{Id: id, Spec: &api.NodeSpec{}, Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_READY}}
}

func (h *harness) setReplicas(t *testing.T, id string, n uint64) {
	t.Helper()
	h.update(t, func(tx store.Tx) error {
		s := tx.Service(id)
		s.Spec.GetReplicated().Replicas = n
		return tx.Update(s)
	})
}

// tasks returns the service's tasks.
func (h *harness) tasks(id string) []*api.Task {
	var ts []*api.Task
	h.s.View(func(tx store.ReadTx) { ts = tx.TasksByService(id) })
	return ts
}

// runningSlots lists the slots of the service's tasks meant to run, sorted,
// a slot once per task (so a duplicate shows).
func runningSlots(tx store.ReadTx, id string) []uint64 {
	var slots []uint64
	for _, t := range tx.TasksByService(id) {
		if reconcile.MeantToRun(t) {
			slots = append(slots, t.Slot)
		}
	}
	slices.Sort(slots)
	return slots
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// waitSlots waits until the service's tasks meant to run are exactly one
// per slot of want.
func (h *harness) waitSlots(t *testing.T, id string, want []uint64) {
	t.Helper()
	waitFor(t, h.s, "slots", func(tx store.ReadTx) bool { return slices.Equal(runningSlots(tx, id), want) })
}

// schedule plays the scheduler and the agent: every PENDING task of the
// service meant to run goes to nodeID and RUNNING.
func (h *harness) schedule(t *testing.T, id, nodeID string) {
	t.Helper()
	h.update(t, func(tx store.Tx) error {
		for _, task := range tx.TasksByService(id) {
			if reconcile.MeantToRun(task) && task.Status.GetState() == api.TaskState_TASK_STATE_PENDING {
				task.NodeId = nodeID
				reconcile.SetStatus(task, api.TaskState_TASK_STATE_RUNNING, "running", time.Now())
				if err := tx.Update(task); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// waitFor waits until cond holds on the store, re-checking after every
// committed batch. The deadline only stops a hung test.
func waitFor(t *testing.T, s *store.MemoryStore, what string, cond func(store.ReadTx) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ok bool
	watch := s.ViewAndWatch(ctx, func(tx store.ReadTx) { ok = cond(tx) })
	for !ok {
		if _, open := <-watch; !open {
			t.Fatalf("gave up waiting for %s", what)
		}
		s.View(func(tx store.ReadTx) { ok = cond(tx) })
	}
}

// countingProposer commits like storetest's and counts transactions.
type countingProposer struct {
	mu    sync.Mutex
	index uint64
	store *store.MemoryStore
}

func newCountingStore() (*store.MemoryStore, *countingProposer) {
	s := store.New()
	p := &countingProposer{store: s}
	s.SetProposer(p)
	return s, p
}

func (p *countingProposer) Propose(ctx context.Context, payload []byte) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	return p.store.Apply(p.index, payload), nil
}

func (p *countingProposer) ReadBarrier(context.Context) error { return nil }

func (p *countingProposer) count() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.index
}
