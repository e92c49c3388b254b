package e2e

// The end-to-end test of sticky IPs (issue 4's acceptance): real shoald
// processes, 3 managers (drained, so they run nothing) and 3 sim workers,
// a network on 198.18.1.0/24 and a replicated service of 10 tasks on it.
// Every slot's address is recorded once, from the tasks and the bindings,
// and a watch samples every task from then on: a slot's task never has
// another address than the slot's, and no two live tasks ever share one.
// The steps share the cluster and run in order: task failures and
// restarts, a drain, a worker killed, the leader killed twice (each new
// leader rebuilds exactly the allocator state the old one had), scale
// 10→4→10, every manager restarted; then pins (--ip, --ip-range), a pin
// change, refused pins and start-first (which change nothing), and the
// CLIs that show the addresses.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

const (
	stickyNetwork = "sticky"
	stickySubnet  = "198.18.1.0/24"
	// stickyDynamic is where the network gives addresses out by itself;
	// the pins of the db service lie above it.
	stickyDynamic = "198.18.1.0/25"
	stickyWorkers = "node-4 node-5 node-6"
)

// stickyIPs is the state the steps share: the cluster, the network's ID,
// web's slot addresses as first recorded, and the watch.
type stickyIPs struct {
	c       *cluster
	network string
	web     slotAddrs
	watch   *addrWatch
}

func TestStickyIPs(t *testing.T) {
	start := time.Now()
	c := newCluster(t, fastRaft...)
	c.initManagers(3)
	for i := 1; i <= 3; i++ {
		c.setAvailability(fmt.Sprintf("node-%d", i), api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	}
	c.startWorkers(4, 6)
	s := &stickyIPs{c: c}
	s.setUp(t)

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"failing tasks restart on their slots' addresses", s.stepFailAndRestart},
		{"a drained node's slots move with their addresses", s.stepDrain},
		{"a killed worker's slots come back elsewhere with their addresses", s.stepKillWorker},
		{"two leaders killed in a row: each new one rebuilds the same state", s.stepKillLeaders},
		{"scale 10 to 4 holds slots 5..10, back to 10 returns them", s.stepScale},
		{"every manager restarted", s.stepRestartManagers},
		{"pins from --ip and --ip-range", s.stepPins},
		{"a pin change moves only its slot", s.stepPinChange},
		{"refused pins and start-first change nothing", s.stepRefusals},
		{"netctl and service ps show the addresses", s.stepCLIs},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) {
			c.t = t
			defer func(parent *testing.T) { c.t = parent }(t)
			defer s.watch.check(t)
			st.run(t)
		}) {
			t.Fatalf("step %q failed; the later steps depend on it", st.name)
		}
	}
	t.Logf("TestStickyIPs took %s", time.Since(start).Round(100*time.Millisecond))
}

// setUp creates the network and web, and records web's slot addresses.
func (s *stickyIPs) setUp(t *testing.T) {
	c := s.c
	if out, err := c.shoalctl(1, "network", "create", "--subnet", stickySubnet, "--ip-range", stickyDynamic, stickyNetwork); err != nil {
		t.Fatalf("network create: %v\n%s", err, out)
	}
	web := simSpec("web", 10)
	web.Task.Networks = []*api.NetworkAttachmentConfig{{Target: stickyNetwork}}
	svc := c.createService(web)
	if len(svc.Spec.Task.Networks) != 1 || svc.Spec.Task.Networks[0].Target == stickyNetwork {
		t.Fatalf("web's network attachment was not resolved to the network's ID: %v", svc.Spec.Task.Networks)
	}
	s.network = svc.Spec.Task.Networks[0].Target

	var v *view
	eventually(t, 60*time.Second, "web runs 10 tasks with addresses", func() error {
		var err error
		if v, err = c.view("web"); err != nil {
			return err
		}
		if err := v.converged(10); err != nil {
			return err
		}
		s.web, err = runningAddrs(v, s.network)
		return err
	})
	bindings, vip, err := c.slotBindings("web", s.network)
	if err != nil {
		t.Fatal(err)
	}
	subnet, dynamic := netip.MustParsePrefix(stickySubnet), netip.MustParsePrefix(stickyDynamic)
	for slot := uint64(1); slot <= 10; slot++ {
		addr := s.web[slot]
		b := bindings[slot]
		if b == nil || b.Address != addr {
			t.Fatalf("slot %d's task has %s, its binding %v", slot, addr, b)
		}
		p, err := netip.ParsePrefix(addr)
		if err != nil || p.Bits() != subnet.Bits() || !dynamic.Contains(p.Addr()) || p.Addr() == netip.MustParseAddr("198.18.1.1") {
			t.Fatalf("slot %d's address %s is not a task address of the network's range %s in %s", slot, addr, stickyDynamic, stickySubnet)
		}
	}
	if vip == nil {
		t.Fatalf("web has no VIP binding on %s", stickyNetwork)
	}
	for slot, addr := range s.web {
		if addrOf(addr) == addrOf(vip.Address) {
			t.Fatalf("slot %d has web's VIP %s", slot, vip.Address)
		}
	}
	t.Logf("web's addresses: %s (VIP %s)", s.web, vip.Address)
	s.watch = c.watchAddrs(t, 3, v.service.Id, s.network, s.web)
}

// stepFailAndRestart makes every web task exit with code 1 after 1.5s (a
// SIM_RUN_FOR in the env, rolled out to all slots at once); the restart
// policy restarts each slot's task again and again. Once every slot has
// seen two of its tasks fail, the env goes back and the tasks run on.
func (s *stickyIPs) stepFailAndRestart(t *testing.T) {
	c := s.c
	before, err := c.service("web")
	if err != nil {
		t.Fatal(err)
	}
	c.updateService("web", func(sp *api.ServiceSpec) {
		sp.Task.Container.Env = []string{"SIM_RUN_FOR=1500ms", "SIM_EXIT_CODE=1"}
		sp.Update = &api.UpdateConfig{Parallelism: 0, Monitor: durationpb.New(200 * time.Millisecond)}
	})
	failed := map[uint64]map[string]bool{}
	eventually(t, 90*time.Second, "every slot's tasks failed twice", func() error {
		v, err := c.view("web")
		if err != nil {
			return err
		}
		for _, tk := range v.tasks {
			if tk.SpecVersion > before.SpecVersion && tk.Status.GetState() == api.TaskState_TASK_STATE_FAILED {
				if failed[tk.Slot] == nil {
					failed[tk.Slot] = map[string]bool{}
				}
				failed[tk.Slot][tk.Id] = true
			}
		}
		for slot := uint64(1); slot <= 10; slot++ {
			if len(failed[slot]) < 2 {
				return fmt.Errorf("slot %d: %d tasks failed (%s)", slot, len(failed[slot]), v.summary())
			}
		}
		return nil
	})
	total := 0
	for _, ids := range failed {
		total += len(ids)
	}
	t.Logf("%d tasks failed and were restarted on their slots", total)
	c.updateService("web", func(sp *api.ServiceSpec) {
		sp.Task.Container.Env = nil
		sp.Update = before.Spec.Update
	})
	c.waitAddrsAgree("web", s.network, 10, s.web, 60*time.Second)
}

func (s *stickyIPs) stepDrain(t *testing.T) {
	c := s.c
	v, err := c.view("web")
	if err != nil {
		t.Fatal(err)
	}
	node := busiestWorker(v, strings.Fields(stickyWorkers)...)
	t.Logf("draining %s, which runs %d web tasks", node, v.perHost()[node])
	c.setAvailability(node, api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	eventually(t, 60*time.Second, node+" runs nothing of web", func() error {
		v, err := c.view("web")
		if err != nil {
			return err
		}
		for _, tk := range v.tasks {
			if v.host[tk.NodeId] == node && (tk.DesiredState <= api.TaskState_TASK_STATE_RUNNING || tk.Status.GetState() <= api.TaskState_TASK_STATE_RUNNING) {
				return fmt.Errorf("task %s (%s) still on %s", tk.Id, describeTask(tk), node)
			}
		}
		_, err = c.addrsAgree("web", s.network, 10, s.web)
		return err
	})
	c.setAvailability(node, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
}

func (s *stickyIPs) stepKillWorker(t *testing.T) {
	c := s.c
	v, err := c.view("web")
	if err != nil {
		t.Fatal(err)
	}
	node := busiestWorker(v, strings.Fields(stickyWorkers)...)
	var n int
	if _, err := fmt.Sscanf(node, "node-%d", &n); err != nil {
		t.Fatalf("worker %q: %v", node, err)
	}
	t.Logf("killing %s, which runs %d web tasks", node, v.perHost()[node])
	c.node(n).kill()
	c.waitNodeState(node, api.NodeState_NODE_STATE_DOWN)
	eventually(t, 60*time.Second, "web runs 10 without "+node, func() error {
		v, err := c.view("web")
		if err != nil {
			return err
		}
		if left := v.meantToRunOn(node); len(left) > 0 {
			return fmt.Errorf("%d tasks still meant to run on %s", len(left), node)
		}
		_, err = c.addrsAgree("web", s.network, 10, s.web)
		return err
	})
	c.start(n)
	c.waitNodeState(node, api.NodeState_NODE_STATE_READY)
	eventually(t, 30*time.Second, node+"'s replaced tasks reported stopped", func() error {
		v, err := c.view("web")
		if err != nil {
			return err
		}
		for _, tk := range v.tasks {
			if v.host[tk.NodeId] == node && tk.Status.GetState() == api.TaskState_TASK_STATE_RUNNING {
				return fmt.Errorf("task %s (%s) still reported running", tk.Id, describeTask(tk))
			}
		}
		return nil
	})
	c.waitAddrsAgree("web", s.network, 10, s.web, 30*time.Second)
}

// stepKillLeaders kills the leader once the cluster is quiet, checks that
// the new leader rebuilt exactly the state the old one dumped last, with
// no inconsistency, restarts the killed manager, and does it again.
func (s *stickyIPs) stepKillLeaders(t *testing.T) {
	c := s.c
	for round := 1; round <= 2; round++ {
		c.waitAddrsAgree("web", s.network, 10, s.web, 60*time.Second)
		old, dump := c.quietDump()
		if err := dumpHolds(dump.StateJson, s.web); err != nil {
			t.Fatalf("node-%d's allocator state: %v\n%s", old, err, dump.StateJson)
		}
		c.node(old).kill()
		leader, st := c.waitLeaderAllocator(old)
		t.Logf("round %d: killed leader node-%d (state at version %d); node-%d leads, rebuilt at version %d in %s",
			round, old, dump.Version, leader, st.RebuiltVersion, st.RebuildDuration.AsDuration())
		if st.RebuiltJson != dump.StateJson {
			t.Errorf("round %d: node-%d rebuilt another allocator state than node-%d had: %s\nold: %s\nnew: %s",
				round, leader, old, dumpDiff(dump.StateJson, st.RebuiltJson), dump.StateJson, st.RebuiltJson)
		}
		if len(st.Inconsistencies) > 0 {
			t.Errorf("round %d: node-%d's rebuild found inconsistencies: %q", round, leader, st.Inconsistencies)
		}
		c.waitAddrsAgree("web", s.network, 10, s.web, 60*time.Second)
		c.start(old)
		c.waitManagers(3, 3)
	}
}

func (s *stickyIPs) stepScale(t *testing.T) {
	c := s.c
	c.updateService("web", func(sp *api.ServiceSpec) { sp.GetReplicated().Replicas = 4 })
	c.waitAddrsAgree("web", s.network, 4, s.web, 60*time.Second)

	out, err := c.netctl(1, "ip", "ls", "--service", "web", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var listed []struct {
		Kind      string `json:"kind"`
		Slot      string `json:"slot"` // protojson writes uint64 as a string
		Address   string `json:"address"`
		HeldSince string `json:"heldSince"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("netctl ip ls --format json: %v\n%s", err, out)
	}
	held := 0
	for _, b := range listed {
		if b.Kind != api.IPBinding_KIND_SLOT.String() {
			continue
		}
		slot, err := strconv.ParseUint(b.Slot, 10, 64)
		if err != nil {
			t.Fatalf("netctl ip ls --format json: slot %q: %v", b.Slot, err)
		}
		if b.Address != s.web[slot] || (slot > 4) != (b.HeldSince != "") {
			t.Errorf("netctl ip ls --format json lists slot %d with %s held since %q; want %s, held: %v", slot, b.Address, b.HeldSince, s.web[slot], slot > 4)
		}
		if b.HeldSince != "" {
			held++
		}
	}
	if held != 6 {
		t.Errorf("netctl ip ls --format json shows %d held slots, want 6 (5..10):\n%s", held, out)
	}
	table, err := c.netctl(1, "ip", "ls", "--service", "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range tableRows(table)[1:] {
		if row[1] == "vip" {
			continue
		}
		slot, _ := strconv.ParseUint(row[1], 10, 64)
		if want := map[bool]string{true: "held", false: "bound"}[slot > 4]; row[4] != want || row[3] != addrOf(s.web[slot]) {
			t.Errorf("netctl ip ls shows slot %d as %s %s, want %s %s:\n%s", slot, row[3], row[4], addrOf(s.web[slot]), want, table)
		}
	}

	c.updateService("web", func(sp *api.ServiceSpec) { sp.GetReplicated().Replicas = 10 })
	c.waitAddrsAgree("web", s.network, 10, s.web, 60*time.Second)
}

// stepRestartManagers stops all three managers (the workers run on),
// starts them again, and checks the addresses, and that the leader
// rebuilt the state the cluster had before.
func (s *stickyIPs) stepRestartManagers(t *testing.T) {
	c := s.c
	c.waitAddrsAgree("web", s.network, 10, s.web, 60*time.Second)
	old, dump := c.quietDump()
	if err := dumpHolds(dump.StateJson, s.web); err != nil {
		t.Fatalf("node-%d's allocator state: %v\n%s", old, err, dump.StateJson)
	}
	for n := 1; n <= 3; n++ {
		c.stopGracefully(n, 30*time.Second)
	}
	for n := 1; n <= 3; n++ {
		c.start(n)
	}
	c.waitManagers(3, 3)
	leader, st := c.waitLeaderAllocator(0)
	if st.RebuiltJson != dump.StateJson {
		t.Errorf("after the restart node-%d rebuilt another allocator state than the cluster had: %s\nold: %s\nnew: %s",
			leader, dumpDiff(dump.StateJson, st.RebuiltJson), dump.StateJson, st.RebuiltJson)
	}
	if len(st.Inconsistencies) > 0 {
		t.Errorf("node-%d's rebuild found inconsistencies: %q", leader, st.Inconsistencies)
	}
	c.waitAddrsAgree("web", s.network, 10, s.web, 60*time.Second)
}

// dbPins are the addresses the db service's slots are pinned to: slot 1
// by --ip, the others by the i-th address of --ip-range.
var dbPins = slotAddrs{1: "198.18.1.200/24", 2: "198.18.1.211/24", 3: "198.18.1.212/24"}

func (s *stickyIPs) stepPins(t *testing.T) {
	c := s.c
	out, err := c.shoalctl(1, "service", "create", "--detach", "--name", "db", "--replicas", "3",
		"--network", stickyNetwork, "--ip", "1=198.18.1.200", "--ip-range", "198.18.1.210-198.18.1.219",
		"--restart-delay", "100ms", "--update-monitor", "200ms", "sim/db:1")
	if err != nil {
		t.Fatalf("service create db: %v\n%s", err, out)
	}
	c.waitAddrsAgree("db", s.network, 3, dbPins, 60*time.Second)
	bindings, _, err := c.slotBindings("db", s.network)
	if err != nil {
		t.Fatal(err)
	}
	for slot, b := range bindings {
		if !b.Pinned {
			t.Errorf("db slot %d's binding %s (%s) is not marked pinned", slot, b.Id, b.Address)
		}
	}
}

// stepPinChange moves db slot 2's pin from the range's .211 to .220:
// slot 2 gets a new task on .220, slots 1 and 3 keep their tasks and
// addresses, and .211 is no longer bound.
func (s *stickyIPs) stepPinChange(t *testing.T) {
	c := s.c
	before, err := c.view("db")
	if err != nil {
		t.Fatal(err)
	}
	kept := map[uint64]string{}
	for _, tk := range before.running() {
		kept[tk.Slot] = tk.Id
	}
	if out, err := c.shoalctl(1, "service", "update", "--detach", "--ip", "2=198.18.1.220", "db"); err != nil {
		t.Fatalf("service update --ip 2=198.18.1.220 db: %v\n%s", err, out)
	}
	want := slotAddrs{1: dbPins[1], 2: "198.18.1.220/24", 3: dbPins[3]}
	c.waitAddrsAgree("db", s.network, 3, want, 60*time.Second)
	c.waitUpdateState("db", api.UpdateStatus_STATE_COMPLETED, 60*time.Second)
	after, err := c.view("db")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range after.running() {
		switch {
		case tk.Slot == 2 && tk.Id == kept[2]:
			t.Errorf("slot 2 still runs task %s after its pin changed", tk.Id)
		case tk.Slot != 2 && tk.Id != kept[tk.Slot]:
			t.Errorf("slot %d's task was replaced (%s → %s) by a pin change of slot 2", tk.Slot, kept[tk.Slot], tk.Id)
		}
	}
	for _, b := range c.bindingsByID() {
		if addrOf(b.Address) == "198.18.1.211" {
			t.Errorf("198.18.1.211, slot 2's old pin, is still bound: %v", b)
		}
	}
}

// stepRefusals tries pins the network cannot give and start-first on
// networked services; each is refused with a message saying why, and
// neither the service nor any binding changes.
func (s *stickyIPs) stepRefusals(t *testing.T) {
	c := s.c
	c.waitAddrsAgree("db", s.network, 3, slotAddrs{1: dbPins[1], 2: "198.18.1.220/24", 3: dbPins[3]}, 30*time.Second)
	webSlot1 := addrOf(s.web[1])
	_, vip, err := c.slotBindings("web", s.network)
	if err != nil || vip == nil {
		t.Fatalf("web's VIP: %v, %v", vip, err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"pin outside the subnet", []string{"service", "update", "--detach", "--ip", "3=198.18.9.5", "db"}, "198.18.9.5 is in no subnet of network " + stickyNetwork},
		{"pin on the gateway", []string{"service", "update", "--detach", "--ip", "3=198.18.1.1", "db"}, "is the gateway"},
		{"pin held by another service's binding", []string{"service", "update", "--detach", "--ip", "3=" + webSlot1, "db"}, "is held by service web slot 1"},
		{"pin on another service's VIP", []string{"service", "update", "--detach", "--ip", "3=" + addrOf(vip.Address), "db"}, "is held by service web as its virtual IP"},
		{"start-first update on a networked service", []string{"service", "update", "--detach", "--update-order", "start-first", "db"}, "start-first cannot be used by a service attached to a network"},
		{"create with a pin on the gateway", []string{"service", "create", "--detach", "--name", "bad", "--network", stickyNetwork, "--ip", "1=198.18.1.1", "sim/bad:1"}, "is the gateway"},
		{"create with start-first", []string{"service", "create", "--detach", "--name", "bad", "--network", stickyNetwork, "--update-order", "start-first", "sim/bad:1"}, "start-first cannot be used"},
	} {
		svcBefore, err := c.service("db")
		if err != nil {
			t.Fatal(err)
		}
		bindingsBefore := c.bindingsByID()
		out, err := c.shoalctl(1, tc.args...)
		if err == nil {
			t.Errorf("%s: shoalctl %s was accepted:\n%s", tc.name, strings.Join(tc.args, " "), out)
		} else if !strings.Contains(out, tc.want) {
			t.Errorf("%s: shoalctl %s: the refusal does not say %q:\n%s", tc.name, strings.Join(tc.args, " "), tc.want, out)
		} else {
			t.Logf("%s: %s", tc.name, strings.TrimSpace(out))
		}
		svcAfter, err := c.service("db")
		if err != nil {
			t.Fatal(err)
		}
		if svcAfter.Meta.Version != svcBefore.Meta.Version || !proto.Equal(svcAfter.Spec, svcBefore.Spec) {
			t.Errorf("%s: the refused command changed db (version %d → %d)", tc.name, svcBefore.Meta.Version, svcAfter.Meta.Version)
		}
		services, err := c.anyControl().ListServices(ctxT(t, 5*time.Second), &api.ListServicesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range services.Services {
			if svc.Spec.Annotations.Name == "bad" {
				t.Errorf("%s: service bad was created (%s)", tc.name, svc.Id)
			}
		}
		bindingsAfter := c.bindingsByID()
		for id, b := range bindingsAfter {
			if !proto.Equal(b, bindingsBefore[id]) {
				t.Errorf("%s: binding %s changed: %v → %v", tc.name, id, bindingsBefore[id], b)
			}
		}
		for id, b := range bindingsBefore {
			if bindingsAfter[id] == nil {
				t.Errorf("%s: binding %s (%s) is gone", tc.name, id, b.Address)
			}
		}
	}
}

// stepCLIs is a light check of what operators read: netctl ip ls, netctl
// ip history web 1 and shoalctl service ps (its ADDRESSES column).
func (s *stickyIPs) stepCLIs(t *testing.T) {
	c := s.c
	c.waitAddrsAgree("web", s.network, 10, s.web, 30*time.Second)

	ls, err := c.netctl(1, "ip", "ls")
	if err != nil {
		t.Fatal(err)
	}
	rows := tableRows(ls)
	if got := strings.Join(rows[0], " "); got != "SERVICE SLOT/NODE NETWORK IP STATE TASK NODE" {
		t.Fatalf("netctl ip ls header %q:\n%s", got, ls)
	}
	found := map[string]string{} // service.slot → "address state"
	for _, row := range rows[1:] {
		if len(row) < 5 || row[2] != stickyNetwork {
			t.Errorf("netctl ip ls row %v is not on %s:\n%s", row, stickyNetwork, ls)
			continue
		}
		found[row[0]+"."+row[1]] = row[3] + " " + row[4]
	}
	for slot, addr := range s.web {
		if got, want := found[fmt.Sprintf("web.%d", slot)], addrOf(addr)+" bound"; got != want {
			t.Errorf("netctl ip ls shows web slot %d as %q, want %q:\n%s", slot, got, want, ls)
		}
	}
	for slot, addr := range map[uint64]string{1: "198.18.1.200", 2: "198.18.1.220", 3: "198.18.1.212"} {
		if got, want := found[fmt.Sprintf("db.%d", slot)], addr+" pinned"; got != want {
			t.Errorf("netctl ip ls shows db slot %d as %q, want %q:\n%s", slot, got, want, ls)
		}
	}
	if found["web.vip"] == "" || found["db.vip"] == "" {
		t.Errorf("netctl ip ls lacks a VIP of web or db:\n%s", ls)
	}

	// Slot 1's history: every holder had its address; the last is the
	// task running now; the failures and moves made several.
	hist, err := c.netctl(1, "ip", "history", "web", "1", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Address string `json:"address"`
		TaskID  string `json:"task_id"`
		Node    string `json:"node"`
		State   string `json:"state"`
	}
	if err := json.Unmarshal([]byte(hist), &entries); err != nil {
		t.Fatalf("netctl ip history --format json: %v\n%s", err, hist)
	}
	v, err := c.view("web")
	if err != nil {
		t.Fatal(err)
	}
	var running *api.Task
	for _, tk := range v.running() {
		if tk.Slot == 1 {
			running = tk
		}
	}
	if len(entries) < 4 {
		t.Errorf("netctl ip history web 1 lists %d holders, want at least 4 (failures, restarts, moves):\n%s", len(entries), hist)
	}
	for _, e := range entries {
		if e.Address != s.web[1] {
			t.Errorf("netctl ip history web 1: task %s held %s, slot 1's address is %s", e.TaskID, e.Address, s.web[1])
		}
	}
	if last := entries[len(entries)-1]; last.TaskID != running.GetId() || last.Node != v.host[running.GetNodeId()] {
		t.Errorf("netctl ip history web 1 ends with task %s on %q, slot 1 runs %s on %s:\n%s",
			last.TaskID, last.Node, running.GetId(), v.host[running.GetNodeId()], hist)
	}
	table, err := c.netctl(1, "ip", "history", "web", "1")
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(table, addrOf(s.web[1])); n != len(entries) {
		t.Errorf("netctl ip history web 1 shows %s on %d rows, want %d:\n%s", addrOf(s.web[1]), n, len(entries), table)
	}

	ps, err := c.shoalctl(1, "service", "ps", "web")
	if err != nil {
		t.Fatalf("service ps web: %v\n%s", err, ps)
	}
	if !strings.Contains(ps, "ADDRESSES") {
		t.Fatalf("service ps has no ADDRESSES column:\n%s", ps)
	}
	for _, tk := range v.running() {
		line := ""
		for _, l := range strings.Split(ps, "\n") {
			if strings.HasPrefix(l, shortTaskID(tk.Id)+" ") {
				line = l
			}
		}
		if want := stickyNetwork + "=" + addrOf(s.web[tk.Slot]); !strings.Contains(line, want) {
			t.Errorf("service ps shows task %s (slot %d) as %q, want %s in it:\n%s", tk.Id, tk.Slot, line, want, ps)
		}
	}
}

// shortTaskID is a task ID as tables show it, cut to 12 characters.
func shortTaskID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
