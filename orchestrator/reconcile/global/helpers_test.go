package global

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
	updater *fakeUpdater
	rounds  chan struct{}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	s := storetest.New()
	return &harness{s: s, sup: restart.NewSupervisor(s, quiet), updater: &fakeUpdater{}, rounds: make(chan struct{}, 1)}
}

// start runs the Supervisor and a new Reconciler until the test ends (or
// the returned stop is called).
func (h *harness) start(t *testing.T) (stop func()) {
	t.Helper()
	rec := New(h.s, h.sup, h.updater, quiet)
	rec.afterReconcile = func() {
		select {
		case h.rounds <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for name, run := range map[string]func(context.Context) error{"reconciler": rec.Run, "supervisor": h.sup.Run} {
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

// settle waits until the reconciler has seen everything committed before
// the call: it makes an event and waits for the round it causes, twice
// (the first round may have been under way already).
func (h *harness) settle(t *testing.T) {
	t.Helper()
	for range 2 {
		select {
		case <-h.rounds:
		default:
		}
		h.update(t, func(tx store.Tx) error {
			return tx.Create(&api.Service{Id: api.NewID(), Spec: &api.ServiceSpec{
				Annotations: &api.Annotations{Name: "poke"},
				Task:        &api.TaskSpec{Placement: &api.Placement{Constraints: []string{"node.id==none"}}},
				Mode:        &api.ServiceSpec_Global{Global: &api.GlobalService{}},
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

func service(id string, constraints ...string) *api.Service {
	return &api.Service{
		Id:          id,
		SpecVersion: 1,
		Spec: &api.ServiceSpec{
			Annotations: &api.Annotations{Name: id},
			Task: &api.TaskSpec{
				Container: &api.ContainerSpec{Image: "agent"},
				Placement: &api.Placement{Constraints: constraints},
			},
			Mode: &api.ServiceSpec_Global{Global: &api.GlobalService{}},
		},
	}
}

func node(id string, labels ...string) *api.Node {
	n := &api.Node{
		Id:          id,
		Spec:        &api.NodeSpec{Annotations: &api.Annotations{Labels: map[string]string{}}},
		Description: &api.NodeDescription{Hostname: id, Os: "linux", Arch: "x86_64"},
		Status:      &api.NodeStatus{State: api.NodeState_NODE_STATE_READY},
	}
	for i := 0; i+1 < len(labels); i += 2 {
		n.Spec.Annotations.Labels[labels[i]] = labels[i+1]
	}
	return n
}

// runningNodes lists the nodes of the service's tasks meant to run, sorted,
// a node once per task (so a duplicate shows).
func runningNodes(tx store.ReadTx, id string) []string {
	var nodes []string
	for _, t := range tx.TasksByService(id) {
		if reconcile.MeantToRun(t) {
			nodes = append(nodes, t.NodeId)
		}
	}
	slices.Sort(nodes)
	return nodes
}

// waitNodes waits until the service's tasks meant to run are exactly one
// per node of want (sorted).
func (h *harness) waitNodes(t *testing.T, id string, want ...string) {
	t.Helper()
	waitFor(t, h.s, "nodes "+id, func(tx store.ReadTx) bool { return slices.Equal(runningNodes(tx, id), want) })
}

func (h *harness) tasks(id string) []*api.Task {
	var ts []*api.Task
	h.s.View(func(tx store.ReadTx) { ts = tx.TasksByService(id) })
	return ts
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
			var got []string
			s.View(func(tx store.ReadTx) {
				for _, t := range tx.Tasks() {
					got = append(got, reconcile.TaskName(t)+" "+t.DesiredState.String())
				}
			})
			t.Fatalf("gave up waiting for %s; tasks: %v", what, got)
		}
		s.View(func(tx store.ReadTx) { ok = cond(tx) })
	}
}
