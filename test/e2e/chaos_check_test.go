package e2e

// This file owns the chaos test's oracle: reading the cluster's records (a snapshot), the
// address invariants checked after every operation, convergence, the comparison of allocator
// dumps, and TestStickyChaosOracle, which shows the checker catches each broken rule.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
)

// snapshot reads the leader's records.
func (x *chaos) snapshot() (*chaosSnapshot, error) {
	var last error
	for range 3 {
		if x.leader == 0 || x.dead[x.leader] || last != nil {
			l, err := x.findLeader()
			if err != nil {
				return nil, err
			}
			x.sawLeader(l)
		}
		s, err := x.read(x.leader)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

// read reads the records from manager n if it is the leader as it sees itself.
func (x *chaos) read(n int) (*chaosSnapshot, error) {
	ctx, cancel := chaosCtx()
	defer cancel()
	cl := x.client(n)
	before, err := cl.ListNodes(ctx, &api.ListNodesRequest{})
	if err != nil {
		return nil, err
	}
	if l, err := chaosLeaderIn(before.Nodes); err != nil || l != n {
		return nil, fmt.Errorf("node %d is no longer the leader (it names %d: %v)", n, l, err)
	}
	svcs, err := cl.ListServices(ctx, &api.ListServicesRequest{})
	if err != nil {
		return nil, err
	}
	tasks, err := cl.ListTasks(ctx, &api.ListTasksRequest{})
	if err != nil {
		return nil, err
	}
	binds, err := cl.ListBindings(ctx, &api.ListBindingsRequest{NetworkIds: []string{x.netID}})
	if err != nil {
		return nil, err
	}
	after, err := cl.ListNodes(ctx, &api.ListNodesRequest{})
	if err != nil {
		return nil, err
	}
	s := &chaosSnapshot{from: n, services: map[string]*api.Service{}, tasks: tasks.Tasks, bindings: binds.Bindings, nodes: map[string]*api.Node{}}
	for _, svc := range svcs.Services {
		s.services[svc.Id] = svc
	}
	for _, node := range after.Nodes {
		s.nodes[node.Id] = node
	}
	return s, nil
}

// sawLeader records the leader l. A change the test did not cause (an election under load) is
// counted, and the new leader's rebuild must have found nothing inconsistent.
func (x *chaos) sawLeader(l int) {
	if x.leader == l {
		return
	}
	prev := x.leader
	x.leader = l
	if prev == 0 {
		return // found again after a kill: the kill checks the new leader
	}
	x.unexpectedLeaders++
	x.note("leader changed from node-%d to node-%d without a kill", prev, l)
	x.newLeaderReport(prev)
}

// mustCheck checks the invariants on a fresh snapshot; a cluster that cannot be read for a
// while fails the test.
func (x *chaos) mustCheck(when string) *chaosSnapshot {
	x.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := x.snapshot()
		if err == nil {
			if err := x.check(s); err != nil {
				x.fail("%s: invariant broken (records read from node-%d):\n%s", when, s.from, err)
			}
			return s
		}
		if time.Now().After(deadline) {
			x.fail("%s: cannot read the leader's records for 30s: %v", when, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pause lets the cluster work for d, checking the invariants as it goes.
func (x *chaos) pause(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(min(100*time.Millisecond, time.Until(end)))
		if time.Now().Before(end) {
			x.mustCheck("during a pause")
		}
	}
}

func chaosTaskAddr(t *api.Task, netID string) (netip.Prefix, bool) {
	for _, att := range t.GetNetworks() {
		if att.GetNetworkId() == netID {
			p, err := netip.ParsePrefix(att.GetAddress())
			return p, err == nil
		}
	}
	return netip.Prefix{}, false
}

// mayRun reports whether t counts as non-terminal: observed at most RUNNING, past NEW, and
// either on a node that is not down or on no node yet but still to be placed. A task told to
// stop before the scheduler placed it stays PENDING in the records, but the scheduler places
// only tasks desired RUNNING: it will never run.
func (s *chaosSnapshot) mayRun(t *api.Task) bool {
	st := t.GetStatus().GetState()
	if st == api.TaskState_TASK_STATE_NEW || st > api.TaskState_TASK_STATE_RUNNING {
		return false
	}
	if t.NodeId == "" {
		return t.DesiredState <= api.TaskState_TASK_STATE_RUNNING
	}
	n := s.nodes[t.NodeId]
	return n != nil && n.GetStatus().GetState() != api.NodeState_NODE_STATE_DOWN
}

func (s *chaosSnapshot) host(nodeID string) string {
	if n := s.nodes[nodeID]; n != nil {
		return fmt.Sprintf("%s[%s]", n.GetDescription().GetHostname(), strings.ToLower(strings.TrimPrefix(n.GetStatus().GetState().String(), "NODE_STATE_")))
	}
	if nodeID == "" {
		return "-"
	}
	return nodeID
}

func (s *chaosSnapshot) describe(t *api.Task, netID string) string {
	addr, _ := chaosTaskAddr(t, netID)
	ts := ""
	if st := t.GetStatus().GetTimestamp(); st != nil {
		ts = st.AsTime().Format("15:04:05.000")
	}
	return fmt.Sprintf("task %s %s.%d v%d on %s, %s, desired %s, observed %s at %s: %q", t.Id, t.ServiceName, t.Slot, t.SpecVersion,
		s.host(t.NodeId), addr, shortState(t.DesiredState), shortState(t.GetStatus().GetState()), ts, t.GetStatus().GetMessage())
}

func (x *chaos) serviceByID(id string) *chaosService {
	for _, s := range x.services {
		if s.id == id {
			return s
		}
	}
	return nil
}

// expect checks that a task of the slot at spec version has addr, learning the slot's address
// when the test has not seen it yet.
func (s *chaosService) expect(slot, version uint64, addr netip.Addr) error {
	eps := s.epochs[slot]
	i := -1
	for j, e := range eps {
		if e.version <= version {
			i = j
		}
	}
	if i < 0 {
		s.epochs[slot] = append([]chaosEpoch{{0, addr}}, eps...)
		return nil
	}
	if eps[i].addr != addr {
		return fmt.Errorf("%s.%d at spec version %d has %s, want %s (the slot's addresses by spec version: %s)", s.name, slot, version, addr, eps[i].addr, s.history(slot))
	}
	return nil
}

// current is the slot's address at spec version, if the test knows it.
func (s *chaosService) current(slot, version uint64) (netip.Addr, bool) {
	var out netip.Addr
	for _, e := range s.epochs[slot] {
		if e.version <= version {
			out = e.addr
		}
	}
	return out, out.IsValid()
}

// pinnedAt reports whether pin (empty: none) is the slot's pin in the test's spec at version.
func (s *chaosService) pinnedAt(slot, version uint64, pin string) bool {
	want := ""
	for _, e := range s.epochs[slot] {
		if e.version <= version {
			want = ""
			if e.version > 0 {
				want = e.addr.String()
			}
		}
	}
	return want == pin
}

// chaosOwnPin is the pin of t's slot in t's own spec, "" when none.
func chaosOwnPin(t *api.Task) string {
	for _, n := range t.GetSpec().GetNetworks() {
		if pin, ok := n.GetIps()[t.Slot]; ok {
			return pin
		}
	}
	return ""
}

// knows checks that a binding of the slot holds one of the slot's addresses.
func (s *chaosService) knows(slot uint64, addr netip.Addr) error {
	eps := s.epochs[slot]
	for _, e := range eps {
		if e.addr == addr {
			return nil
		}
	}
	if len(eps) == 0 || eps[0].version > 1 {
		s.epochs[slot] = append([]chaosEpoch{{0, addr}}, eps...)
		return nil
	}
	return fmt.Errorf("the binding of %s.%d holds %s, which the slot never had (its addresses by spec version: %s)", s.name, slot, addr, s.history(slot))
}

func (s *chaosService) history(slot uint64) string {
	var parts []string
	for _, e := range s.epochs[slot] {
		parts = append(parts, fmt.Sprintf("v%d→%s", e.version, e.addr))
	}
	return strings.Join(parts, " ")
}

// check checks the invariants on one snapshot:
//   - no two non-terminal tasks share an address, and no slot has two non-terminal tasks with
//     addresses (a slot's address moves only once its previous task stopped or lost its node);
//   - every task's address is its slot's for the task's spec version: the one the slot had,
//     or the pin the test set from that version on;
//   - bindings hold distinct addresses, each one its slot's, the address their task has; a
//     VIP never moves; a slot's binding, once seen, stays (scaled-away slots are held).
func (x *chaos) check(s *chaosSnapshot) error {
	x.checks++
	var problems []string
	byAddr := map[netip.Addr][]*api.Task{}
	bySlot := map[string][]*api.Task{}
	byID := map[string]*api.Task{}
	for _, t := range s.tasks {
		byID[t.Id] = t
		pfx, ok := chaosTaskAddr(t, x.netID)
		if !ok {
			continue
		}
		svc := x.serviceByID(t.ServiceId)
		if svc == nil {
			problems = append(problems, "a task of a service the test did not create: "+s.describe(t, x.netID))
			continue
		}
		x.used[pfx.Addr()] = true
		svc.bound[t.Slot] = true
		if err := svc.expect(t.Slot, t.SpecVersion, pfx.Addr()); err != nil {
			if own := chaosOwnPin(t); !svc.pinnedAt(t.Slot, t.SpecVersion, own) {
				err = fmt.Errorf("%w; the task's own spec pins the slot to %q, not to the pin of its spec version: its spec_version moved without its spec", err, own)
			}
			problems = append(problems, fmt.Sprintf("%v:\n    %s", err, s.describe(t, x.netID)))
		}
		if s.mayRun(t) {
			byAddr[pfx.Addr()] = append(byAddr[pfx.Addr()], t)
			k := fmt.Sprintf("%s.%d", svc.name, t.Slot)
			bySlot[k] = append(bySlot[k], t)
		}
	}
	for addr, ts := range byAddr {
		if len(ts) > 1 {
			problems = append(problems, fmt.Sprintf("%d non-terminal tasks hold %s:%s", len(ts), addr, s.describeAll(ts, x.netID)))
		}
	}
	for k, ts := range bySlot {
		if len(ts) > 1 {
			problems = append(problems, fmt.Sprintf("slot %s has %d non-terminal tasks with addresses:%s", k, len(ts), s.describeAll(ts, x.netID)))
		}
	}

	holder := map[netip.Addr]string{}
	present := map[string]bool{}
	for _, b := range s.bindings {
		pfx, err := netip.ParsePrefix(b.Address)
		if err != nil {
			problems = append(problems, fmt.Sprintf("binding %s has an unreadable address %q", b.Id, b.Address))
			continue
		}
		x.used[pfx.Addr()] = true
		if other, dup := holder[pfx.Addr()]; dup {
			problems = append(problems, fmt.Sprintf("bindings %s and %s both hold %s", other, b.Id, pfx))
		}
		holder[pfx.Addr()] = b.Id
		svc := x.serviceByID(b.ServiceId)
		if svc == nil {
			problems = append(problems, fmt.Sprintf("binding %s (%s) of a service the test did not create", b.Id, pfx))
			continue
		}
		switch b.Kind {
		case api.IPBinding_KIND_VIP:
			if !svc.vip.IsValid() {
				svc.vip = pfx.Addr()
			} else if svc.vip != pfx.Addr() {
				problems = append(problems, fmt.Sprintf("the VIP of %s moved from %s to %s", svc.name, svc.vip, pfx))
			}
		case api.IPBinding_KIND_SLOT:
			present[fmt.Sprintf("%s.%d", svc.name, b.Slot)] = true
			svc.bound[b.Slot] = true
			if err := svc.knows(b.Slot, pfx.Addr()); err != nil {
				problems = append(problems, err.Error())
			}
			if t := byID[b.TaskId]; t != nil {
				if tp, ok := chaosTaskAddr(t, x.netID); ok && tp != pfx {
					problems = append(problems, fmt.Sprintf("the binding of %s.%d holds %s but its task has %s:\n    %s", svc.name, b.Slot, pfx, tp, s.describe(t, x.netID)))
				}
			}
		default:
			problems = append(problems, fmt.Sprintf("binding %s of %s has kind %s; the services are replicated", b.Id, svc.name, b.Kind))
		}
	}
	now := time.Now()
	for _, svc := range x.services {
		for slot := range svc.bound {
			k := fmt.Sprintf("%s.%d", svc.name, slot)
			if present[k] {
				delete(x.missing, k)
				continue
			}
			since, seen := x.missing[k]
			if !seen {
				x.missing[k] = now
			} else if now.Sub(since) > chaosBindingGrace {
				problems = append(problems, fmt.Sprintf("the binding of %s (addresses %s) is gone since %s; nothing released it", k, svc.history(slot), since.Format("15:04:05.000")))
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

func (s *chaosSnapshot) describeAll(ts []*api.Task, netID string) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString("\n    " + s.describe(t, netID))
	}
	return b.String()
}

func (x *chaos) converged(s *chaosSnapshot) error {
	for _, node := range s.nodes {
		n, err := chaosProcOf(node)
		if err != nil {
			return err
		}
		want := api.NodeState_NODE_STATE_READY
		if x.dead[n] {
			want = api.NodeState_NODE_STATE_DOWN
		}
		if got := node.GetStatus().GetState(); got != want {
			return fmt.Errorf("node-%d is %s, want %s", n, got, want)
		}
	}
	for _, cs := range x.services {
		svc := s.services[cs.id]
		if svc == nil {
			return fmt.Errorf("service %s is gone", cs.name)
		}
		if st := svc.GetUpdateStatus().GetState(); st == api.UpdateStatus_STATE_UPDATING || st == api.UpdateStatus_STATE_ROLLBACK_STARTED {
			return fmt.Errorf("%s: update %s", cs.name, st)
		}
		want := svc.Spec.GetReplicated().GetReplicas()
		running := map[uint64]int{}
		for _, t := range s.tasks {
			if t.ServiceId != svc.Id {
				continue
			}
			st := t.GetStatus().GetState()
			if t.DesiredState <= api.TaskState_TASK_STATE_RUNNING && st < api.TaskState_TASK_STATE_RUNNING {
				return fmt.Errorf("%s.%d: task %s is %s: %s", cs.name, t.Slot, t.Id, shortState(st), t.GetStatus().GetMessage())
			}
			if t.DesiredState == api.TaskState_TASK_STATE_RUNNING && st == api.TaskState_TASK_STATE_RUNNING {
				if t.SpecVersion != svc.SpecVersion {
					return fmt.Errorf("%s.%d: task %s runs spec version %d, the service is at %d", cs.name, t.Slot, t.Id, t.SpecVersion, svc.SpecVersion)
				}
				if want, ok := cs.current(t.Slot, svc.SpecVersion); ok {
					if got, _ := chaosTaskAddr(t, x.netID); got.Addr() != want {
						return fmt.Errorf("%s.%d: task %s runs with %s, the slot's address at spec version %d is %s", cs.name, t.Slot, t.Id, got, svc.SpecVersion, want)
					}
				}
				running[t.Slot]++
			}
		}
		for slot := uint64(1); slot <= want; slot++ {
			if running[slot] != 1 {
				return fmt.Errorf("%s.%d: %d tasks running", cs.name, slot, running[slot])
			}
		}
		if len(running) != int(want) {
			return fmt.Errorf("%s: slots %v run, want 1..%d", cs.name, slices.Sorted(maps.Keys(running)), want)
		}
	}
	return nil
}

// chaosDiffDumps lists how two allocator dumps differ: by network and by binding key.
func chaosDiffDumps(want, got string) string {
	type dump struct {
		Networks []json.RawMessage `json:"networks"`
		Bindings []json.RawMessage `json:"bindings"`
	}
	var a, b dump
	if err := json.Unmarshal([]byte(want), &a); err != nil {
		return fmt.Sprintf("old dump unreadable: %v", err)
	}
	if err := json.Unmarshal([]byte(got), &b); err != nil {
		return fmt.Sprintf("new dump unreadable: %v", err)
	}
	var out []string
	for i := range max(len(a.Networks), len(b.Networks)) {
		var x, y string
		if i < len(a.Networks) {
			x = string(a.Networks[i])
		}
		if i < len(b.Networks) {
			y = string(b.Networks[i])
		}
		if x != y {
			out = append(out, fmt.Sprintf("network %d:\n  old %s\n  new %s", i, x, y))
		}
	}
	byKey := func(raw []json.RawMessage) map[string]string {
		m := map[string]string{}
		for _, r := range raw {
			var k struct {
				Key string `json:"key"`
			}
			_ = json.Unmarshal(r, &k)
			m[k.Key] = string(r)
		}
		return m
	}
	ka, kb := byKey(a.Bindings), byKey(b.Bindings)
	keys := map[string]bool{}
	for k := range ka {
		keys[k] = true
	}
	for k := range kb {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if ka[k] != kb[k] {
			out = append(out, fmt.Sprintf("binding %s:\n  old %s\n  new %s", k, ka[k], kb[k]))
		}
	}
	if len(out) == 0 {
		return "(the dumps differ only in layout)"
	}
	return strings.Join(out, "\n")
}

// TestStickyChaosOracle checks the chaos test's checker on made-up records: it must catch each
// broken invariant and accept what the rules allow.
func TestStickyChaosOracle(t *testing.T) {
	const a, b, p = "198.19.4.2/23", "198.19.4.3/23", "198.19.5.1/23"
	run, shut := api.TaskState_TASK_STATE_RUNNING, api.TaskState_TASK_STATE_SHUTDOWN
	pending, failed := api.TaskState_TASK_STATE_PENDING, api.TaskState_TASK_STATE_FAILED
	task := func(id string, slot, version uint64, addr string, desired, observed api.TaskState, node string) *api.Task {
		return &api.Task{Id: id, ServiceId: "svc", ServiceName: "alpha", Slot: slot, SpecVersion: version, NodeId: node,
			DesiredState: desired, Status: &api.TaskStatus{State: observed},
			Networks: []*api.NetworkAttachment{{NetworkId: "net", Address: addr}}}
	}
	binding := func(kind api.IPBinding_Kind, slot uint64, addr, taskID string) *api.IPBinding {
		return &api.IPBinding{Id: fmt.Sprintf("b%d-%s", slot, kind), ServiceId: "svc", NetworkId: "net", Kind: kind, Slot: slot, Address: addr, TaskId: taskID}
	}
	slot := api.IPBinding_KIND_SLOT
	for _, tc := range []struct {
		name     string
		tasks    []*api.Task
		bindings []*api.IPBinding
		prepare  func(x *chaos, s *chaosService)
		want     string // a part of the error; "" when the records are fine
	}{
		{name: "each slot its address",
			tasks:    []*api.Task{task("t1", 1, 1, a, run, run, "up"), task("t2", 2, 1, b, run, run, "up")},
			bindings: []*api.IPBinding{binding(slot, 1, a, "t1"), binding(slot, 2, b, "t2")}},
		{name: "two live tasks with one address",
			tasks: []*api.Task{task("t1", 1, 1, a, run, run, "up"), task("t2", 2, 1, a, run, pending, "")},
			want:  "non-terminal tasks hold 198.19.4.2"},
		{name: "a slot's old task still running beside its new one",
			tasks: []*api.Task{task("t1", 1, 1, a, shut, run, "up"), task("t2", 1, 1, a, run, pending, "")},
			want:  "slot alpha.1 has 2 non-terminal tasks"},
		{name: "the old task's node is down",
			tasks: []*api.Task{task("t1", 1, 1, a, shut, run, "down"), task("t2", 1, 1, a, run, run, "up")}},
		{name: "the old task was told to stop before it was placed",
			tasks: []*api.Task{task("t1", 1, 1, a, shut, pending, ""), task("t2", 1, 1, a, run, pending, "")}},
		{name: "a slot's address moved without a pin",
			tasks: []*api.Task{task("t1", 1, 1, a, shut, failed, "up"), task("t2", 1, 2, b, run, run, "up")},
			want:  "alpha.1 at spec version 2 has 198.19.4.3, want 198.19.4.2"},
		{name: "a pin moves the slot from its spec version on",
			prepare: func(x *chaos, s *chaosService) {
				s.epochs[1] = append(s.epochs[1], chaosEpoch{3, netip.MustParseAddr("198.19.5.1")})
			},
			tasks:    []*api.Task{task("t1", 1, 2, a, shut, shut, "up"), task("t2", 1, 3, p, run, run, "up")},
			bindings: []*api.IPBinding{binding(slot, 1, p, "t2")}},
		{name: "a binding that holds an address its slot never had",
			bindings: []*api.IPBinding{binding(slot, 1, b, "")},
			want:     "which the slot never had"},
		{name: "a binding and its task disagree",
			tasks:    []*api.Task{task("t1", 1, 1, a, run, run, "up")},
			bindings: []*api.IPBinding{binding(slot, 1, a, "t1"), binding(slot, 2, b, "t1")},
			want:     "the binding of alpha.2 holds 198.19.4.3/23 but its task has 198.19.4.2/23"},
		{name: "two bindings with one address",
			bindings: []*api.IPBinding{binding(slot, 1, a, ""), binding(api.IPBinding_KIND_VIP, 0, a, "")},
			want:     "both hold 198.19.4.2"},
		{name: "the VIP moved",
			prepare:  func(x *chaos, s *chaosService) { s.vip = netip.MustParseAddr("198.19.4.9") },
			bindings: []*api.IPBinding{binding(api.IPBinding_KIND_VIP, 0, b, "")},
			want:     "the VIP of alpha moved"},
		{name: "a held slot's binding is gone",
			prepare: func(x *chaos, s *chaosService) {
				s.bound[1] = true
				x.missing["alpha.1"] = time.Now().Add(-2 * chaosBindingGrace)
			},
			want: "the binding of alpha.1 (addresses v0→198.19.4.2) is gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &chaosService{name: "alpha", id: "svc", bound: map[uint64]bool{},
				epochs: map[uint64][]chaosEpoch{1: {{0, netip.MustParseAddr("198.19.4.2")}}}}
			x := &chaos{t: t, netID: "net", services: []*chaosService{s}, used: map[netip.Addr]bool{}, missing: map[string]time.Time{}}
			if tc.prepare != nil {
				tc.prepare(x, s)
			}
			snap := &chaosSnapshot{tasks: tc.tasks, bindings: tc.bindings, nodes: map[string]*api.Node{
				"up":   {Id: "up", Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_READY}},
				"down": {Id: "down", Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN}},
			}}
			err := x.check(snap)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("the records are fine, the check says: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("the check passed; want a problem saying %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("the check says %v; want a problem saying %q", err, tc.want)
			}
		})
	}
}
