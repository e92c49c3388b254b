package allocator_test

// A randomized model test: the test plays the orchestrator and the agents (scales, task
// failures, nodes going down and coming back, pin changes) against a running allocator, and
// replaces the allocator (a leader change) now and then. After every step it checks the
// invariants of the sticky IPAM; at each leader change, that the new allocator rebuilds exactly
// the state the old one had.

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/allocator"
	"github.com/shoal/shoal/orchestrator/reconcile"
	rt "github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/store"
)

func TestRandomizedOperationsKeepEverySlotsAddress(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SHOAL_ALLOCATOR_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	steps := 300
	if testing.Short() {
		steps = 100
	}
	t.Logf("seed %d (re-run with SHOAL_ALLOCATOR_SEED=%d)", seed, seed)
	m := &model{t: t, rng: rand.New(rand.NewPCG(seed, 0)), s: newStore(t), ips: map[uint64]netip.Addr{}, checked: map[string]bool{}, nextPin: 100}
	rt.Create(t, m.s, rt.ReplicatedService("web", 0, onNetwork(nil)))
	m.a, m.stop = startAllocator(t, m.s, nil)
	m.scale(6)
	for i := 0; i < steps; i++ {
		op := m.step()
		m.settle()
		if err := m.check(); err != nil {
			t.Fatalf("seed %d, step %d (%s): %v\ntasks:\n%s", seed, i, op, err, m.describe())
		}
	}
}

type model struct {
	t       *testing.T
	rng     *rand.Rand
	s       *store.MemoryStore
	a       *allocator.Allocator
	stop    func()
	ips     map[uint64]netip.Addr // each slot's address, as its last task given one had it
	checked map[string]bool       // tasks whose address was checked
	nextPin int                   // next never-used host number for a pin
}

func (m *model) service() *api.Service {
	var s *api.Service
	m.s.View(func(tx store.ReadTx) { s = tx.Service("web") })
	return s
}

func (m *model) nodeDown(tx store.ReadTx, id string) bool {
	n := tx.Node(id)
	return n == nil || n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN
}

// live is a task that may be using its address: given one, not ended, its node up.
func live(tx store.ReadTx, t *api.Task) bool {
	st := t.GetStatus().GetState()
	if st == api.TaskState_TASK_STATE_NEW || st > api.TaskState_TASK_STATE_RUNNING {
		return false
	}
	if t.NodeId == "" {
		return t.DesiredState <= api.TaskState_TASK_STATE_RUNNING
	}
	n := tx.Node(t.NodeId)
	return n != nil && n.GetStatus().GetState() != api.NodeState_NODE_STATE_DOWN
}

// step does one random operation and names it.
func (m *model) step() string {
	replicas := m.service().Spec.GetReplicated().GetReplicas()
	switch r := m.rng.IntN(100); {
	case r < 20:
		n := uint64(1 + m.rng.IntN(10))
		m.scale(n)
		return fmt.Sprintf("scale to %d", n)
	case r < 35:
		slot := uint64(1 + m.rng.IntN(int(max(replicas, 1))))
		m.failSlot(slot)
		return fmt.Sprintf("fail slot %d", slot)
	case r < 45:
		node := fmt.Sprintf("n%d", 1+m.rng.IntN(3))
		m.setNodeState(node, api.NodeState_NODE_STATE_DOWN)
		return "node down " + node
	case r < 55:
		node := fmt.Sprintf("n%d", 1+m.rng.IntN(3))
		m.setNodeState(node, api.NodeState_NODE_STATE_READY)
		return "node up " + node
	case r < 65:
		if replicas == 0 {
			return "nothing"
		}
		slot := uint64(1 + m.rng.IntN(int(replicas)))
		addr := netip.MustParseAddr(fmt.Sprintf("10.20.0.%d", m.nextPin))
		m.nextPin++
		m.pin(slot, addr)
		return fmt.Sprintf("pin slot %d to %s", slot, addr)
	case r < 72:
		m.leaderChange()
		return "leader change"
	case r < 82:
		if replicas == 0 {
			return "nothing"
		}
		slot := uint64(1 + m.rng.IntN(int(replicas)))
		m.roll(slot)
		return fmt.Sprintf("roll slot %d", slot)
	default:
		m.placeAndStop()
		return "agents report"
	}
}

// scale sets the replicas; the slots above stop at once, missing slots get NEW tasks.
func (m *model) scale(n uint64) {
	rt.Update(m.t, m.s, func(tx store.Tx) error {
		svc := tx.Service("web")
		svc.Spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: n}}
		if err := tx.Update(svc); err != nil {
			return err
		}
		have := map[uint64]bool{}
		for _, tk := range tx.TasksByService("web") {
			if !reconcile.MeantToRun(tk) {
				continue
			}
			if tk.Slot > n {
				tk.DesiredState = api.TaskState_TASK_STATE_REMOVE
				if tk.Status.State <= api.TaskState_TASK_STATE_RUNNING {
					tk.Status.State = api.TaskState_TASK_STATE_SHUTDOWN
				}
				if err := tx.Update(tk); err != nil {
					return err
				}
				continue
			}
			have[tk.Slot] = true
		}
		for slot := uint64(1); slot <= n; slot++ {
			if !have[slot] {
				if err := tx.Create(reconcile.NewTask(svc, slot, "", time.Now())); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// failSlot fails the slot's running task and makes its replacement, as the restart policy does.
func (m *model) failSlot(slot uint64) {
	rt.Update(m.t, m.s, func(tx store.Tx) error {
		svc := tx.Service("web")
		for _, tk := range tx.TasksByService("web") {
			if tk.Slot == slot && reconcile.MeantToRun(tk) && tk.Status.State == api.TaskState_TASK_STATE_RUNNING {
				tk.Status.State = api.TaskState_TASK_STATE_FAILED
				tk.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
				if err := tx.Update(tk); err != nil {
					return err
				}
				return tx.Create(reconcile.NewTask(svc, slot, "", time.Now()))
			}
		}
		return nil
	})
}

// setNodeState marks a node down (its tasks are replaced, as the orchestrator does) or up (its
// tasks told to stop meanwhile still run until an "agents report" step stops them).
func (m *model) setNodeState(node string, state api.NodeState) {
	rt.Update(m.t, m.s, func(tx store.Tx) error {
		n := tx.Node(node)
		if n.Status.State == state {
			return nil
		}
		n.Status.State = state
		if err := tx.Update(n); err != nil {
			return err
		}
		svc := tx.Service("web")
		for _, tk := range tx.TasksByNode(node) {
			switch {
			case state == api.NodeState_NODE_STATE_DOWN && reconcile.MeantToRun(tk):
				tk.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
				if err := tx.Update(tk); err != nil {
					return err
				}
				if tk.Slot <= svc.Spec.GetReplicated().GetReplicas() {
					if err := tx.Create(reconcile.NewTask(svc, tk.Slot, "", time.Now())); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// pin pins slot to addr; the slot's task is replaced, stop-first, as the updater does.
func (m *model) pin(slot uint64, addr netip.Addr) {
	rt.Update(m.t, m.s, func(tx store.Tx) error {
		svc := tx.Service("web")
		cfg := svc.Spec.Task.Networks[0]
		if cfg.Ips == nil {
			cfg.Ips = map[uint64]string{}
		}
		cfg.Ips[slot] = addr.String()
		svc.SpecVersion++
		if err := tx.Update(svc); err != nil {
			return err
		}
		for _, tk := range tx.TasksByService("web") {
			if tk.Slot == slot && reconcile.MeantToRun(tk) {
				tk.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
				if err := tx.Update(tk); err != nil {
					return err
				}
			}
		}
		return tx.Create(reconcile.NewTask(svc, slot, "", time.Now()))
	})
}

// roll replaces slot's task stop-first with no change of address, as a rolling update does: the
// old task is told to stop, the new one must wait until it has.
func (m *model) roll(slot uint64) {
	rt.Update(m.t, m.s, func(tx store.Tx) error {
		svc := tx.Service("web")
		for _, tk := range tx.TasksByService("web") {
			if tk.Slot == slot && reconcile.MeantToRun(tk) {
				tk.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
				if err := tx.Update(tk); err != nil {
					return err
				}
			}
		}
		return tx.Create(reconcile.NewTask(svc, slot, "", time.Now()))
	})
}

// placeAndStop plays the scheduler and the agents: PENDING tasks run on an up node, tasks told
// to stop on up nodes stop.
func (m *model) placeAndStop() {
	rt.Update(m.t, m.s, func(tx store.Tx) error {
		var up []string
		for _, n := range tx.Nodes() {
			if n.Status.State != api.NodeState_NODE_STATE_DOWN {
				up = append(up, n.Id)
			}
		}
		for _, tk := range tx.TasksByService("web") {
			changed := false
			switch {
			case tk.Status.State == api.TaskState_TASK_STATE_PENDING && reconcile.MeantToRun(tk) && len(up) > 0:
				tk.NodeId = up[m.rng.IntN(len(up))]
				tk.Status.State = api.TaskState_TASK_STATE_RUNNING
				changed = true
			case !reconcile.MeantToRun(tk) && tk.Status.State <= api.TaskState_TASK_STATE_RUNNING && (tk.NodeId == "" || !m.nodeDown(tx, tk.NodeId)):
				tk.Status.State = api.TaskState_TASK_STATE_SHUTDOWN
				changed = true
			}
			if changed {
				if err := tx.Update(tk); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// leaderChange replaces the allocator, and checks the new one rebuilt the old one's state.
func (m *model) leaderChange() {
	m.settle()
	before, _ := m.a.State()
	m.stop()
	if m.a.Stale() {
		m.t.Fatalf("the old allocator stopped with uncommitted state")
	}
	m.a, m.stop = startAllocator(m.t, m.s, nil)
	waitState(m.t, m.a, func([]byte) bool { return true })
	rep := m.a.Report()
	if string(rep.State) != string(before) {
		m.t.Fatalf("rebuilt state differs:\n got %s\nwant %s", rep.State, before)
	}
	if len(rep.Inconsistencies) > 0 {
		m.t.Fatalf("rebuild reported %v", rep.Inconsistencies)
	}
}

// settle waits until the allocator has done all it can: every NEW task meant to run waits for a
// reason (fencing, a pin) and neither the store nor the allocator's state moved for a while.
func (m *model) settle() {
	deadline := time.Now().Add(20 * time.Second)
	var lastState string
	var lastVersion uint64
	quiet := 0
	for quiet < 3 {
		if time.Now().After(deadline) {
			m.t.Fatalf("the allocator never settled; tasks:\n%s", m.describe())
		}
		time.Sleep(5 * time.Millisecond)
		st, _ := m.a.State()
		var version uint64
		waiting := false
		m.s.View(func(tx store.ReadTx) {
			version = tx.Version()
			for _, tk := range tx.TasksByService("web") {
				if tk.Status.State == api.TaskState_TASK_STATE_NEW && reconcile.MeantToRun(tk) && tk.Status.Message == reconcile.TaskMessageAllocating {
					waiting = true
				}
			}
		})
		if string(st) == lastState && version == lastVersion && !waiting {
			quiet++
		} else {
			quiet = 0
		}
		lastState, lastVersion = string(st), version
	}
}

// check asserts the invariants: no two live tasks share an address; a task given an address
// has its slot's, which is the one the slot had unless the task's own spec pins another; every
// binding holds its holder's address.
func (m *model) check() error {
	var err error
	m.s.View(func(tx store.ReadTx) {
		holders := map[netip.Addr]string{}
		for _, tk := range tx.TasksByService("web") {
			if len(tk.Networks) == 0 {
				continue
			}
			addr := netip.MustParsePrefix(tk.Networks[0].Address).Addr()
			if !m.checked[tk.Id] {
				m.checked[tk.Id] = true
				want, known := m.ips[tk.Slot]
				if pin, ok := tk.Spec.Networks[0].Ips[tk.Slot]; ok {
					want, known = netip.MustParseAddr(pin), true
				}
				if known && want != addr {
					err = fmt.Errorf("slot %d task %s got %s, want %s", tk.Slot, tk.Id, addr, want)
					return
				}
				m.ips[tk.Slot] = addr
			}
			if !live(tx, tk) {
				continue
			}
			if other, dup := holders[addr]; dup {
				err = fmt.Errorf("tasks %s and %s are both live with %s", other, tk.Id, addr)
				return
			}
			holders[addr] = tk.Id
		}
		for _, b := range tx.Bindings() {
			holder := tx.Task(b.TaskId)
			if holder == nil || len(holder.Networks) == 0 {
				continue
			}
			if holder.Networks[0].Address != b.Address {
				err = fmt.Errorf("binding %s says %s, its holder %s has %s", allocator.KeyOf(b), b.Address, holder.Id, holder.Networks[0].Address)
				return
			}
		}
	})
	return err
}

func (m *model) describe() string {
	var b strings.Builder
	m.s.View(func(tx store.ReadTx) {
		for _, tk := range tx.TasksByService("web") {
			fmt.Fprintf(&b, "  slot %d %s node=%s desired=%s observed=%s addr=%v msg=%q\n", tk.Slot, tk.Id, tk.NodeId,
				tk.DesiredState, tk.Status.State, tk.Networks, tk.Status.Message)
		}
		for _, bd := range tx.Bindings() {
			fmt.Fprintf(&b, "  binding %s %s task=%s held=%v\n", allocator.KeyOf(bd), bd.Address, bd.TaskId, bd.HeldSince != nil)
		}
	})
	return b.String()
}
