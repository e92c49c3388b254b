package allocator_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/allocator"
	"github.com/shoal/shoal/orchestrator/reconcile"
	rt "github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/store"
)

const netID = "net1"

// newStore is a store with the binding check, a network net1 of 10.20.0.0/24 and nodes n1..n3.
func newStore(t *testing.T) *store.MemoryStore {
	t.Helper()
	s := store.New(store.CheckOf(allocator.CheckBindingConflicts))
	s.SetProposer(&localProposer{s: s})
	rt.Create(t, s,
		&api.Network{Id: netID, Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "front"}, Driver: "overlay",
			Ipam: []*api.IPAMConfig{{Subnet: "10.20.0.0/24"}}}},
		rt.Node("n1"), rt.Node("n2"), rt.Node("n3"))
	return s
}

// localProposer applies each proposal at once, as a one-manager raft would.
type localProposer struct {
	mu    sync.Mutex
	s     *store.MemoryStore
	index uint64
}

func (p *localProposer) Propose(_ context.Context, payload []byte) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	return p.s.Apply(p.index, payload), nil
}

func (p *localProposer) ReadBarrier(context.Context) error { return nil }

// onNetwork attaches a service to net1, with pins slot → address.
func onNetwork(pins map[uint64]string) func(*api.Service) {
	return func(s *api.Service) {
		s.Spec.Task.Networks = []*api.NetworkAttachmentConfig{{Target: netID, Ips: pins}}
	}
}

// startAllocator runs an allocator on s until the returned stop is called.
func startAllocator(t *testing.T, s *store.MemoryStore, clock func() time.Time) (*allocator.Allocator, func()) {
	t.Helper()
	a := allocator.New(s, nil)
	if clock != nil {
		a.SetClock(clock)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			t.Errorf("allocator: %v", err)
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// newTasks creates a NEW task for each slot of svc.
func newTasks(t *testing.T, s *store.MemoryStore, svc *api.Service, slots ...uint64) []*api.Task {
	t.Helper()
	var out []*api.Task
	for _, slot := range slots {
		out = append(out, reconcile.NewTask(svc, slot, "", time.Now()))
	}
	objs := make([]store.Object, len(out))
	for i, tk := range out {
		objs[i] = tk
	}
	rt.Create(t, s, objs...)
	return out
}

// setTask changes task id in the store.
func setTask(t *testing.T, s *store.MemoryStore, id string, fn func(*api.Task)) {
	t.Helper()
	rt.Update(t, s, func(tx store.Tx) error {
		tk := tx.Task(id)
		fn(tk)
		return tx.Update(tk)
	})
}

// running places task id on node and marks it RUNNING.
func running(node string) func(*api.Task) {
	return func(tk *api.Task) {
		tk.NodeId = node
		tk.Status.State = api.TaskState_TASK_STATE_RUNNING
	}
}

// addressOf is task id's address on net1, once it has one.
func waitAddress(t *testing.T, s *store.MemoryStore, id string) netip.Addr {
	t.Helper()
	var addr netip.Addr
	rt.WaitFor(t, s, "task "+id+" to get its address", func(tx store.ReadTx) bool {
		tk := tx.Task(id)
		if tk == nil || tk.Status.State != api.TaskState_TASK_STATE_PENDING || len(tk.Networks) == 0 {
			return false
		}
		addr = netip.MustParsePrefix(tk.Networks[0].Address).Addr()
		return true
	})
	return addr
}

// bindingOf is the slot binding of service svc on net1, nil if none.
func bindingOf(s *store.MemoryStore, svc string, slot uint64) *api.IPBinding {
	var b *api.IPBinding
	s.View(func(tx store.ReadTx) { b = bindingIn(tx, svc, slot) })
	return b
}

// bindingIn is bindingOf inside a read (WaitFor's conditions: a nested View could deadlock).
func bindingIn(tx store.ReadTx, svc string, slot uint64) *api.IPBinding {
	return tx.Binding(allocator.BindingID(allocator.Key{Service: svc, Network: netID, Kind: api.IPBinding_KIND_SLOT, Slot: slot}))
}

// waitSettled waits until the allocator has nothing left to do: its dump stops changing.
func waitState(t *testing.T, a *allocator.Allocator, cond func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, running := a.State()
		if running && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("allocator state never got there: %s", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
