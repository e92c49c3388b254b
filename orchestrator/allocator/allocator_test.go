package allocator_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/allocator"
	rt "github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/store"
)

func TestTasksGetDistinctAddressesAndTheServiceAVIP(t *testing.T) {
	s := newStore(t)
	svc := rt.ReplicatedService("web", 3, onNetwork(nil))
	rt.Create(t, s, svc)
	tasks := newTasks(t, s, svc, 1, 2, 3)
	startAllocator(t, s, nil)
	seen := map[netip.Addr]bool{}
	for _, tk := range tasks {
		addr := waitAddress(t, s, tk.Id)
		if seen[addr] || addr == netip.MustParseAddr("10.20.0.1") {
			t.Fatalf("address %s given twice or is the gateway", addr)
		}
		seen[addr] = true
		b := bindingOf(s, "web", tk.Slot)
		if b == nil || b.TaskId != tk.Id || netip.MustParsePrefix(b.Address).Addr() != addr {
			t.Fatalf("slot %d binding %v, want task %s at %s", tk.Slot, b, tk.Id, addr)
		}
	}
	rt.WaitFor(t, s, "the VIP", func(tx store.ReadTx) bool {
		vip := tx.Binding(allocator.BindingID(allocator.VIPKey("web", netID)))
		return vip != nil && !seen[netip.MustParsePrefix(vip.Address).Addr()]
	})
}

func TestFencingHandsASlotsAddressOnlyToTheNextTaskOnceThePreviousStopped(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, s *store.MemoryStore, old *api.Task)
	}{
		{"previous task failed", func(t *testing.T, s *store.MemoryStore, old *api.Task) {
			setTask(t, s, old.Id, func(tk *api.Task) { tk.Status.State = api.TaskState_TASK_STATE_FAILED })
		}},
		{"previous task's node down", func(t *testing.T, s *store.MemoryStore, old *api.Task) {
			rt.Update(t, s, rt.SetNode("n1", rt.WithState(api.NodeState_NODE_STATE_DOWN)))
		}},
		{"previous task's node removed", func(t *testing.T, s *store.MemoryStore, old *api.Task) {
			rt.Update(t, s, func(tx store.Tx) error { return tx.Delete(tx.Node("n1")) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			svc := rt.ReplicatedService("web", 1, onNetwork(nil))
			rt.Create(t, s, svc)
			first := newTasks(t, s, svc, 1)[0]
			startAllocator(t, s, nil)
			addr := waitAddress(t, s, first.Id)
			setTask(t, s, first.Id, running("n1"))
			next := newTasks(t, s, svc, 1)[0]
			rt.WaitFor(t, s, "the next task to wait for the first", func(tx store.ReadTx) bool {
				tk := tx.Task(next.Id)
				return tk.Status.State == api.TaskState_TASK_STATE_NEW && strings.Contains(tk.Status.Message, "waiting for task "+first.Id)
			})
			tc.end(t, s, first)
			if got := waitAddress(t, s, next.Id); got != addr {
				t.Fatalf("slot 1 moved from %s to %s", addr, got)
			}
			b := bindingOf(s, "web", 1)
			if b.TaskId != next.Id || len(b.History) != 2 || b.History[0].NodeId != "n1" {
				t.Fatalf("binding after the handover: %v", b)
			}
		})
	}
}

func TestScaleDownHoldsBindingsAndScaleUpGetsThemBack(t *testing.T) {
	s := newStore(t)
	svc := rt.ReplicatedService("web", 3, onNetwork(nil))
	rt.Create(t, s, svc)
	tasks := newTasks(t, s, svc, 1, 2, 3)
	var clockMu sync.Mutex
	now := time.Now()
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	startAllocator(t, s, clock)
	addrs := map[uint64]netip.Addr{}
	for _, tk := range tasks {
		addrs[tk.Slot] = waitAddress(t, s, tk.Id)
	}
	// Scale to 1: slots 2 and 3 end; their bindings are held.
	rt.Update(t, s, func(tx store.Tx) error {
		sv := tx.Service("web")
		sv.Spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 1}}
		for _, tk := range tasks[1:] {
			cur := tx.Task(tk.Id)
			cur.DesiredState = api.TaskState_TASK_STATE_REMOVE
			cur.Status.State = api.TaskState_TASK_STATE_SHUTDOWN
			if err := tx.Update(cur); err != nil {
				return err
			}
		}
		return tx.Update(sv)
	})
	rt.WaitFor(t, s, "slots 2 and 3 held", func(tx store.ReadTx) bool {
		b2, b3 := bindingIn(tx, "web", 2), bindingIn(tx, "web", 3)
		return b2 != nil && b3 != nil && b2.HeldSince != nil && b3.HeldSince != nil
	})
	advance(24 * time.Hour) // no ip_hold: held until the service goes
	rt.Update(t, s, func(tx store.Tx) error {
		sv := tx.Service("web")
		sv.Spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 3}}
		return tx.Update(sv)
	})
	again := newTasks(t, s, svc, 2, 3)
	for _, tk := range again {
		if got := waitAddress(t, s, tk.Id); got != addrs[tk.Slot] {
			t.Fatalf("slot %d came back with %s, had %s", tk.Slot, got, addrs[tk.Slot])
		}
	}
	if b := bindingOf(s, "web", 2); b.HeldSince != nil {
		t.Fatalf("slot 2 still held after scaling back: %v", b)
	}

	// With ip_hold 1m, a held binding is released a minute after its slot went.
	rt.Update(t, s, func(tx store.Tx) error {
		sv := tx.Service("web")
		sv.Spec.IpHold = durationpb.New(time.Minute)
		sv.Spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 2}}
		cur := tx.Task(again[1].Id)
		cur.DesiredState = api.TaskState_TASK_STATE_REMOVE
		cur.Status.State = api.TaskState_TASK_STATE_SHUTDOWN
		if err := tx.Update(cur); err != nil {
			return err
		}
		return tx.Update(sv)
	})
	rt.WaitFor(t, s, "slot 3 held", func(tx store.ReadTx) bool { b := bindingIn(tx, "web", 3); return b != nil && b.HeldSince != nil })
	advance(2 * time.Minute)
	rt.WaitFor(t, s, "slot 3 released", func(tx store.ReadTx) bool { return bindingIn(tx, "web", 3) == nil })
	var cooling []*api.ReleasedAddress
	s.View(func(tx store.ReadTx) { cooling = tx.Network(netID).Allocation[0].Cooling })
	if len(cooling) != 1 || cooling[0].Address != addrs[3].String() {
		t.Fatalf("cooling after the release: %v, want %s", cooling, addrs[3])
	}
}

func TestPinsAndAPinChangeMoveOnlyThatSlot(t *testing.T) {
	s := newStore(t)
	svc := rt.ReplicatedService("web", 2, onNetwork(map[uint64]string{2: "10.20.0.200"}))
	rt.Create(t, s, svc)
	tasks := newTasks(t, s, svc, 1, 2)
	startAllocator(t, s, nil)
	a1 := waitAddress(t, s, tasks[0].Id)
	if got := waitAddress(t, s, tasks[1].Id); got != netip.MustParseAddr("10.20.0.200") {
		t.Fatalf("pinned slot 2 got %s", got)
	}
	if b := bindingOf(s, "web", 2); !b.Pinned {
		t.Fatalf("slot 2 binding not marked pinned: %v", b)
	}
	setTask(t, s, tasks[1].Id, running("n1"))
	// The operator pins slot 2 elsewhere; the updater makes a new task for the slot.
	rt.Update(t, s, func(tx store.Tx) error {
		sv := tx.Service("web")
		sv.Spec.Task.Networks[0].Ips = map[uint64]string{2: "10.20.0.201"}
		sv.SpecVersion++
		return tx.Update(sv)
	})
	s.View(func(tx store.ReadTx) { svc = tx.Service("web") })
	next := newTasks(t, s, svc, 2)[0]
	rt.WaitFor(t, s, "the new task to wait", func(tx store.ReadTx) bool {
		return strings.Contains(tx.Task(next.Id).Status.Message, "waiting for task")
	})
	setTask(t, s, tasks[1].Id, func(tk *api.Task) { tk.Status.State = api.TaskState_TASK_STATE_SHUTDOWN })
	if got := waitAddress(t, s, next.Id); got != netip.MustParseAddr("10.20.0.201") {
		t.Fatalf("re-pinned slot 2 got %s", got)
	}
	if b := bindingOf(s, "web", 1); netip.MustParsePrefix(b.Address).Addr() != a1 {
		t.Fatalf("slot 1 moved: %v", b)
	}
}

func TestPinHeldByAnotherServiceWaitsWithTheHolderNamed(t *testing.T) {
	s := newStore(t)
	api1 := rt.ReplicatedService("api", 1, onNetwork(map[uint64]string{1: "10.20.0.50"}))
	web := rt.ReplicatedService("web", 1, onNetwork(map[uint64]string{1: "10.20.0.50"}))
	rt.Create(t, s, api1, web)
	first := newTasks(t, s, api1, 1)[0]
	startAllocator(t, s, nil)
	waitAddress(t, s, first.Id)
	second := newTasks(t, s, web, 1)[0]
	rt.WaitFor(t, s, "web's task to wait for api's pin", func(tx store.ReadTx) bool {
		return tx.Task(second.Id).Status.Message == "pinned address 10.20.0.50 on network front is held by service api slot 1"
	})
}

func TestReleaseRequestFreesAHeldBinding(t *testing.T) {
	s := newStore(t)
	svc := rt.ReplicatedService("web", 1, onNetwork(nil))
	rt.Create(t, s, svc)
	tk := newTasks(t, s, svc, 1)[0]
	startAllocator(t, s, nil)
	waitAddress(t, s, tk.Id)
	setTask(t, s, tk.Id, running("n1"))
	rt.Update(t, s, func(tx store.Tx) error {
		b := bindingIn(tx, "web", 1)
		b.ReleaseRequested = true
		return tx.Update(b)
	})
	time.Sleep(100 * time.Millisecond)
	if bindingOf(s, "web", 1) == nil {
		t.Fatal("binding released while its task runs")
	}
	setTask(t, s, tk.Id, func(tk *api.Task) { tk.Status.State = api.TaskState_TASK_STATE_SHUTDOWN })
	rt.WaitFor(t, s, "the binding released", func(tx store.ReadTx) bool { return bindingIn(tx, "web", 1) == nil })
}

func TestRemovedServiceReleasesItsBindingsOnceItsTasksStopped(t *testing.T) {
	s := newStore(t)
	svc := rt.ReplicatedService("web", 2, onNetwork(nil))
	rt.Create(t, s, svc)
	tasks := newTasks(t, s, svc, 1, 2)
	startAllocator(t, s, nil)
	for _, tk := range tasks {
		waitAddress(t, s, tk.Id)
		setTask(t, s, tk.Id, running("n2"))
	}
	rt.Update(t, s, func(tx store.Tx) error { return tx.Delete(tx.Service("web")) })
	time.Sleep(100 * time.Millisecond)
	if bindingOf(s, "web", 1) == nil {
		t.Fatal("binding released while its task runs")
	}
	for _, tk := range tasks {
		setTask(t, s, tk.Id, func(tk *api.Task) { tk.Status.State = api.TaskState_TASK_STATE_SHUTDOWN })
	}
	rt.WaitFor(t, s, "every binding released", func(tx store.ReadTx) bool { return len(tx.Bindings()) == 0 })
}

func TestANewAllocatorRebuildsTheStateTheOldOneHad(t *testing.T) {
	s := newStore(t)
	svc := rt.ReplicatedService("web", 5, onNetwork(map[uint64]string{4: "10.20.0.99"}))
	rt.Create(t, s, svc)
	tasks := newTasks(t, s, svc, 1, 2, 3, 4, 5)
	old, stop := startAllocator(t, s, nil)
	for _, tk := range tasks {
		waitAddress(t, s, tk.Id)
	}
	// A release, so the pool has a cooling address and a moved cursor.
	rt.Update(t, s, func(tx store.Tx) error {
		b := bindingIn(tx, "web", 5)
		b.ReleaseRequested = true
		return tx.Update(b)
	})
	setTask(t, s, tasks[4].Id, func(tk *api.Task) { tk.Status.State = api.TaskState_TASK_STATE_FAILED })
	rt.WaitFor(t, s, "slot 5 released", func(tx store.ReadTx) bool { return bindingIn(tx, "web", 5) == nil })
	want := waitState(t, old, func(b []byte) bool { return strings.Contains(string(b), `"cooling"`) })
	stop()
	successor, _ := startAllocator(t, s, nil)
	waitState(t, successor, func([]byte) bool { return true })
	got := successor.Report()
	if string(got.State) != string(want) {
		t.Fatalf("rebuilt state differs:\n got %s\nwant %s", got.State, want)
	}
	if len(got.Inconsistencies) != 0 {
		t.Fatalf("a consistent store reported %v", got.Inconsistencies)
	}
	var d allocator.Dump
	if err := json.Unmarshal(got.State, &d); err != nil || len(d.Bindings) != 5 { // 4 slots + the VIP
		t.Fatalf("dump: %v, %s", err, got.State)
	}
}

func TestRebuildReportsAndRepairsInconsistentRecords(t *testing.T) {
	s := store.New() // no binding check: the records below could not be written otherwise
	s.SetProposer(&localProposer{s: s})
	rt.Create(t, s,
		&api.Network{Id: netID, Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "front"}, Driver: "overlay",
			Ipam: []*api.IPAMConfig{{Subnet: "10.20.0.0/24"}}}},
		rt.Node("n1"))
	svc := rt.ReplicatedService("web", 4, onNetwork(nil))
	rt.Create(t, s, svc)
	key := func(slot uint64) allocator.Key {
		return allocator.Key{Service: "web", Network: netID, Kind: api.IPBinding_KIND_SLOT, Slot: slot}
	}
	task := func(slot uint64, addr string) *api.Task {
		k := key(slot)
		return &api.Task{Id: "t" + string(rune('0'+slot)), ServiceId: "web", ServiceName: "web", Slot: slot, NodeId: "n1", SpecVersion: 1,
			Spec: svc.Spec.Task, DesiredState: api.TaskState_TASK_STATE_RUNNING,
			Status:   &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING},
			Networks: []*api.NetworkAttachment{{NetworkId: netID, Address: addr, BindingId: allocator.BindingID(k)}}}
	}
	binding := func(slot uint64, addr, taskID string) *api.IPBinding {
		k := key(slot)
		return &api.IPBinding{Id: allocator.BindingID(k), ServiceId: "web", NetworkId: netID, Kind: k.Kind, Slot: slot, Address: addr, TaskId: taskID}
	}
	rt.Create(t, s,
		task(1, "10.20.0.5/24"), binding(1, "10.20.0.5/24", "t1"), // consistent
		task(2, "10.20.0.6/24"), binding(2, "10.20.0.7/24", "t2"), // the task disagrees with its binding
		task(3, "10.20.0.8/24"), // no binding: adopted
		task(4, "10.20.0.5/24"), // t1's address, no binding: shut down
	)
	a, _ := startAllocator(t, s, nil)
	rt.WaitFor(t, s, "t2 and t4 shut down and t3's binding recreated", func(tx store.ReadTx) bool {
		return tx.Task("t2").DesiredState == api.TaskState_TASK_STATE_SHUTDOWN && tx.Binding(allocator.BindingID(key(3))) != nil &&
			tx.Task("t4").DesiredState == api.TaskState_TASK_STATE_SHUTDOWN && tx.Task("t1").DesiredState == api.TaskState_TASK_STATE_RUNNING
	})
	waitState(t, a, func([]byte) bool { return len(a.Report().Inconsistencies) >= 5 })
	rep := strings.Join(a.Report().Inconsistencies, "\n")
	for _, want := range []string{"task t2 holds 10.20.0.6/24", "task t3 holds 10.20.0.8/24 on network front with no binding",
		"tasks t1 and t4 both hold 10.20.0.5 on network", "task t4 holds 10.20.0.5/24 on network front with no binding, and the address is taken"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
}

func TestTheStoreRefusesASecondBindingOfOneAddress(t *testing.T) {
	s := newStore(t)
	k1 := allocator.Key{Service: "a", Network: netID, Kind: api.IPBinding_KIND_SLOT, Slot: 1}
	k2 := allocator.Key{Service: "b", Network: netID, Kind: api.IPBinding_KIND_SLOT, Slot: 1}
	rt.Create(t, s, &api.IPBinding{Id: allocator.BindingID(k1), ServiceId: "a", NetworkId: netID, Slot: 1, Address: "10.20.0.9/24"})
	for _, objs := range [][]store.Object{
		{&api.IPBinding{Id: allocator.BindingID(k2), ServiceId: "b", NetworkId: netID, Slot: 1, Address: "10.20.0.9/24"}},
		{ // two in one transaction
			&api.IPBinding{Id: "x1", ServiceId: "c", NetworkId: netID, Slot: 1, Address: "10.20.0.10/24"},
			&api.IPBinding{Id: "x2", ServiceId: "c", NetworkId: netID, Slot: 2, Address: "10.20.0.10/24"},
		},
	} {
		err := s.Update(t.Context(), func(tx store.Tx) error {
			for _, o := range objs {
				if err := tx.Create(o); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "is bound to") {
			t.Fatalf("second binding of one address: %v", err)
		}
	}
}
