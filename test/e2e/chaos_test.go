package e2e

// This file owns the randomized chaos test of sticky IPs (issue 4's acceptance): a seeded run of
// several hundred operations — scale, drain, activate, worker kill and restart, leader kill and
// restart, service update, pin change, task failures — on 3 managers and 3 sim workers, with the
// address invariants checked after every step and the allocator rebuild compared on every leader
// change. Its helpers are named chaos... and live here alone; the sticky_* files own the
// step-by-step test of the same rules.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

const (
	// chaosDefaultOps keeps the test within a few minutes on this machine (2 CPUs).
	chaosDefaultOps = 300
	chaosNetName    = "chaosnet"
	chaosSubnet     = "198.19.4.0/23"
	// chaosAutoRange is where the allocator picks addresses by itself; pins come from the
	// other half of the subnet, so a fresh pin never waits for an address to cool down.
	chaosAutoRange   = "198.19.4.0/24"
	chaosFirstPin    = "198.19.5.1"
	chaosLastPin     = "198.19.5.254"
	chaosMaxReplicas = 12
	chaosConverge    = 90 * time.Second
	// chaosBindingGrace is how long a known slot's binding may be missing from a listing (a
	// new leader's store catching up) before it counts as lost.
	chaosBindingGrace = 5 * time.Second
)

var (
	chaosManagers = []int{1, 2, 3}
	chaosWorkers  = []int{4, 5, 6}
)

// TestStickyChaos drives a cluster through a random sequence of operations and checks after
// each one that no two non-terminal tasks share an address, that every slot keeps its address
// unless the test moved its pin, and that every new leader rebuilds the allocator state the
// old one had. SHOAL_CHAOS_SEED fixes the sequence, SHOAL_CHAOS_OPS its length.
func TestStickyChaos(t *testing.T) {
	seed, ops := chaosSettings(t)
	rerun := fmt.Sprintf("SHOAL_CHAOS_SEED=%d SHOAL_CHAOS_OPS=%d go test ./test/e2e -run 'TestStickyChaos$' -v", seed, ops)
	t.Logf("chaos seed %d, %d operations; re-run with: %s", seed, ops, rerun)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos FAILED with seed %d; re-run with: %s (the seed fixes the choices, not the timing)", seed, rerun)
		}
	})

	c := newCluster(t, append(slices.Clone(fastRaft), "--sim-start-delay", "0")...)
	c.initManagers(len(chaosManagers))
	for _, m := range chaosManagers {
		c.setAvailability(fmt.Sprintf("node-%d", m), api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	}
	c.startWorkers(chaosWorkers[0], chaosWorkers[len(chaosWorkers)-1])

	x := &chaos{
		t: t, c: c, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), start: time.Now(),
		conns: make(map[int]*grpc.ClientConn), dead: make(map[int]bool), upAfter: make(map[int]time.Time), drained: make(map[int]bool),
		used: make(map[netip.Addr]bool), missing: make(map[string]time.Time), counts: make(map[string]int),
		nextPin: netip.MustParseAddr(chaosFirstPin),
	}
	t.Cleanup(func() {
		for _, conn := range x.conns {
			conn.Close()
		}
	})
	x.setUp()
	for i := 1; i <= ops; i++ {
		x.step = i
		op := x.pick()
		op.run(x)
		x.counts[op.name]++
		x.pause(time.Duration(x.rng.IntN(300)) * time.Millisecond)
		x.mustCheck(fmt.Sprintf("after op %d (%s)", i, op.name))
	}
	x.step = ops + 1
	x.note("final settle")
	x.heal()
	x.waitConverged("the final settle")
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(x.counts)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, x.counts[k]))
	}
	t.Logf("chaos: %d operations in %s (seed %d), %d checks, %d leader changes checked (%d not caused by the test): %s",
		ops, time.Since(x.start).Round(time.Second), seed, x.checks, x.leaderChanges, x.unexpectedLeaders, strings.Join(parts, ", "))
}

// chaosSettings reads the seed (SHOAL_CHAOS_SEED, else the clock) and the number of operations
// (SHOAL_CHAOS_OPS, else chaosDefaultOps).
func chaosSettings(t *testing.T) (seed uint64, ops int) {
	seed, ops = uint64(time.Now().UnixNano()), chaosDefaultOps
	if s := os.Getenv("SHOAL_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SHOAL_CHAOS_SEED=%q: not an unsigned integer: %v", s, err)
		}
		seed = v
	}
	if s := os.Getenv("SHOAL_CHAOS_OPS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("SHOAL_CHAOS_OPS=%q: not a positive count", s)
		}
		ops = v
	}
	return seed, ops
}

// chaos is one run: the cluster, the random source, and what the test knows the cluster must
// look like.
type chaos struct {
	t     *testing.T
	c     *cluster
	rng   *rand.Rand
	start time.Time
	step  int
	trail []string // what happened, for the failure report

	conns   map[int]*grpc.ClientConn
	dead    map[int]bool      // processes killed and not started again
	upAfter map[int]time.Time // when a killed process may be started again
	drained map[int]bool      // workers the test drained
	leader  int               // the leader's process number, as last seen

	netID    string
	services []*chaosService
	used     map[netip.Addr]bool // every address seen or pinned: a fresh pin is none of them
	nextPin  netip.Addr
	missing  map[string]time.Time // slot bindings missing from a listing, since when

	counts            map[string]int
	checks            int
	leaderChanges     int
	unexpectedLeaders int
}

// chaosService is what the test knows of one service: its spec as the test last wrote it, and
// the addresses each slot must have.
type chaosService struct {
	name     string
	id       string
	replicas uint64
	pins     map[uint64]string
	gen      int
	failing  bool // its tasks exit after SIM_RUN_FOR and get restarted
	// epochs lists each slot's addresses by the spec version from which they hold: version 0 is
	// the address the slot had when the test first saw it, later ones the pins the test set.
	epochs map[uint64][]chaosEpoch
	bound  map[uint64]bool // slots seen with a binding: it must stay
	vip    netip.Addr
}

type chaosEpoch struct {
	version uint64
	addr    netip.Addr
}

// chaosSnapshot is one read of the leader's records: nodes are read both before and after the
// tasks, and the later read decides whether a task's node is up.
type chaosSnapshot struct {
	from     int
	services map[string]*api.Service
	tasks    []*api.Task
	bindings []*api.IPBinding
	nodes    map[string]*api.Node
}

type chaosOp struct {
	name   string
	weight int
	ok     func(*chaos) bool
	run    func(*chaos)
}

var chaosOpTable = []chaosOp{
	{"scale", 24, nil, (*chaos).opScale},
	{"drain", 8, (*chaos).canDrain, (*chaos).opDrain},
	{"activate", 8, (*chaos).anyDrained, (*chaos).opActivate},
	{"kill worker", 5, (*chaos).canKillWorker, (*chaos).opKillWorker},
	{"restart worker", 8, (*chaos).workerMayRestart, (*chaos).opRestartWorker},
	{"kill leader when quiet", 3, (*chaos).managersUp, (*chaos).opKillLeaderQuiet},
	{"kill leader when busy", 2, (*chaos).managersUp, (*chaos).opKillLeaderBusy},
	{"restart manager", 10, (*chaos).managerMayRestart, (*chaos).opRestartManager},
	{"update", 8, nil, (*chaos).opUpdate},
	{"pin", 7, nil, (*chaos).opPin},
	{"fail tasks", 5, nil, (*chaos).opFail},
	{"settle", 3, nil, (*chaos).opSettle},
}

// pick draws an operation among those that may run now, by weight.
func (x *chaos) pick() chaosOp {
	var ok []chaosOp
	total := 0
	for _, op := range chaosOpTable {
		if op.ok == nil || op.ok(x) {
			ok = append(ok, op)
			total += op.weight
		}
	}
	n := x.rng.IntN(total)
	for _, op := range ok {
		if n < op.weight {
			return op
		}
		n -= op.weight
	}
	panic("unreachable")
}

// note records what happened, in the log and in the trail a failure prints.
func (x *chaos) note(format string, args ...any) {
	line := fmt.Sprintf("[%6.1fs op %d] ", time.Since(x.start).Seconds(), x.step) + fmt.Sprintf(format, args...)
	x.trail = append(x.trail, line)
	x.t.Log(line)
}

// fail ends the test with what it saw: the message, the last operations, and the allocator's
// (and the updater's in-place adoptions') log lines of every node; the cleanup prints the seed.
func (x *chaos) fail(format string, args ...any) {
	x.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, format, args...)
	fmt.Fprintf(&b, "\n--- last operations ---\n%s", strings.Join(x.trail[max(0, len(x.trail)-40):], "\n"))
	for _, n := range append(slices.Clone(chaosManagers), chaosWorkers...) {
		p := x.c.node(n)
		if p == nil {
			continue
		}
		var lines []string
		for _, l := range strings.Split(p.log.String(), "\n") {
			if strings.Contains(l, "allocator") || strings.Contains(l, "binding") || strings.Contains(l, "records disagree") ||
				strings.Contains(l, "brought up to date in place") {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n--- shoald %d: last allocator and adoption lines ---\n%s", n, strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
	x.t.Fatal(b.String())
}

func chaosCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// client returns a Control client on process n's socket, one connection per process run.
func (x *chaos) client(n int) api.ControlClient {
	conn := x.conns[n]
	if conn == nil {
		var err error
		conn, err = grpc.NewClient("unix://"+x.c.node(n).sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			x.t.Fatalf("dial node %d's control socket: %v", n, err)
		}
		x.conns[n] = conn
	}
	return api.NewControlClient(conn)
}

func (x *chaos) forget(n int) {
	if conn := x.conns[n]; conn != nil {
		conn.Close()
		delete(x.conns, n)
	}
}

// leaderSeenBy returns the leader's process number as manager m sees it.
func (x *chaos) leaderSeenBy(m int) (int, error) {
	ctx, cancel := chaosCtx()
	defer cancel()
	resp, err := x.client(m).ListNodes(ctx, &api.ListNodesRequest{})
	if err != nil {
		return 0, err
	}
	return chaosLeaderIn(resp.Nodes)
}

func chaosLeaderIn(nodes []*api.Node) (int, error) {
	for _, n := range nodes {
		if n.GetManagerStatus().GetLeader() {
			return chaosProcOf(n)
		}
	}
	return 0, errors.New("no leader named")
}

func chaosProcOf(n *api.Node) (int, error) {
	var i int
	if _, err := fmt.Sscanf(n.GetDescription().GetHostname(), "node-%d", &i); err != nil {
		return 0, fmt.Errorf("node %s: hostname %q: %w", n.GetId(), n.GetDescription().GetHostname(), err)
	}
	return i, nil
}

// findLeader asks the live managers for the leader until one names a live one.
func (x *chaos) findLeader() (int, error) {
	var errs []error
	for _, m := range chaosManagers {
		if x.dead[m] {
			continue
		}
		l, err := x.leaderSeenBy(m)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("node %d: %w", m, err))
		case x.dead[l]:
			errs = append(errs, fmt.Errorf("node %d names the dead node %d", m, l))
		default:
			return l, nil
		}
	}
	return 0, errors.Join(errs...)
}

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

// setUp creates the network and the two services and waits until they run.
func (x *chaos) setUp() {
	ctx, cancel := chaosCtx()
	defer cancel()
	nw, err := x.client(1).CreateNetwork(ctx, &api.CreateNetworkRequest{Spec: &api.NetworkSpec{
		Annotations: &api.Annotations{Name: chaosNetName},
		Driver:      "overlay",
		Ipam:        []*api.IPAMConfig{{Subnet: chaosSubnet, IpRange: chaosAutoRange}},
	}})
	if err != nil {
		x.t.Fatalf("create network %s: %v", chaosNetName, err)
	}
	x.netID = nw.Network.Id
	pins := map[uint64]string{}
	for _, slot := range []uint64{1, 2, 4} {
		pins[slot] = x.freshPin().String()
	}
	for _, s := range []*chaosService{
		{name: "alpha", replicas: 8},
		{name: "beta", replicas: 6, pins: pins},
	} {
		s.epochs, s.bound = make(map[uint64][]chaosEpoch), make(map[uint64]bool)
		for slot, p := range s.pins {
			s.epochs[slot] = []chaosEpoch{{1, netip.MustParseAddr(p)}}
		}
		resp, err := x.client(1).CreateService(ctx, &api.CreateServiceRequest{Spec: x.spec(s)})
		if err != nil {
			x.t.Fatalf("create service %s: %v", s.name, err)
		}
		s.id = resp.Service.Id
		x.services = append(x.services, s)
		x.note("created %s: %d replicas, pins %v", s.name, s.replicas, s.pins)
	}
	x.waitConverged("the first start")
}

// spec is the service spec the test wants for s.
func (x *chaos) spec(s *chaosService) *api.ServiceSpec {
	return &api.ServiceSpec{
		Annotations: &api.Annotations{Name: s.name},
		Task: &api.TaskSpec{
			Container: &api.ContainerSpec{Image: "sim/" + s.name + ":1", Env: s.env(0)},
			Restart:   &api.RestartPolicy{Delay: durationpb.New(100 * time.Millisecond)},
			Networks:  []*api.NetworkAttachmentConfig{{Target: chaosNetName, Ips: chaosPins(s.pins)}},
		},
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: s.replicas}},
		Update: &api.UpdateConfig{Parallelism: 3, Monitor: durationpb.New(200 * time.Millisecond),
			FailureAction: api.UpdateConfig_FAILURE_ACTION_CONTINUE},
	}
}

// chaosPins copies a pin map; nil when empty.
func chaosPins(m map[uint64]string) map[uint64]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// env is the container env of s's tasks; runFor > 0 makes them fail after that long.
func (s *chaosService) env(runFor time.Duration) []string {
	env := []string{fmt.Sprintf("CHAOS_GEN=%d", s.gen)}
	if runFor > 0 {
		env = append(env, "SIM_RUN_FOR="+runFor.String(), "SIM_EXIT_CODE=1")
	}
	return env
}

// freshPin returns an address of the pin half of the subnet that nothing ever held.
func (x *chaos) freshPin() netip.Addr {
	last := netip.MustParseAddr(chaosLastPin)
	for ; x.nextPin.Compare(last) <= 0; x.nextPin = x.nextPin.Next() {
		if !x.used[x.nextPin] {
			a := x.nextPin
			x.used[a] = true
			x.nextPin = a.Next()
			return a
		}
	}
	return netip.Addr{}
}

// update reads s, lets change edit its spec and writes it back, retrying through elections and
// version conflicts; change must give the same spec each time it runs.
func (x *chaos) update(s *chaosService, what string, change func(*api.ServiceSpec)) *api.Service {
	x.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		svc, err := x.tryUpdate(s, change)
		if err == nil {
			s.replicas = svc.Spec.GetReplicated().GetReplicas()
			x.note("%s %s: spec version %d", what, s.name, svc.SpecVersion)
			return svc
		}
		if status.Code(err) == codes.InvalidArgument || time.Now().After(deadline) {
			x.fail("%s %s: %v", what, s.name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (x *chaos) tryUpdate(s *chaosService, change func(*api.ServiceSpec)) (*api.Service, error) {
	if x.leader == 0 || x.dead[x.leader] {
		l, err := x.findLeader()
		if err != nil {
			return nil, err
		}
		x.sawLeader(l)
	}
	ctx, cancel := chaosCtx()
	defer cancel()
	cl := x.client(x.leader)
	got, err := cl.GetService(ctx, &api.GetServiceRequest{ServiceId: s.id})
	if err != nil {
		if l, ferr := x.findLeader(); ferr == nil {
			x.sawLeader(l)
		}
		return nil, err
	}
	spec := proto.Clone(got.Service.Spec).(*api.ServiceSpec)
	change(spec)
	resp, err := cl.UpdateService(ctx, &api.UpdateServiceRequest{ServiceId: s.id, ServiceVersion: got.Service.Meta.Version, Spec: spec})
	if err != nil {
		return nil, err
	}
	return resp.Service, nil
}

// setAvailability sets worker w's availability through the leader.
func (x *chaos) setAvailability(w int, a api.NodeAvailability) {
	x.t.Helper()
	host := fmt.Sprintf("node-%d", w)
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := func() error {
			l, err := x.findLeader()
			if err != nil {
				return err
			}
			ctx, cancel := chaosCtx()
			defer cancel()
			cl := x.client(l)
			got, err := cl.GetNode(ctx, &api.GetNodeRequest{NodeId: host})
			if err != nil {
				return err
			}
			spec := got.Node.Spec
			spec.Availability = a
			_, err = cl.UpdateNode(ctx, &api.UpdateNodeRequest{NodeId: got.Node.Id, NodeVersion: got.Node.Meta.Version, Spec: spec})
			return err
		}()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			x.fail("set %s %s: %v", host, a, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (x *chaos) anyService() *chaosService { return x.services[x.rng.IntN(len(x.services))] }

func (x *chaos) opScale() {
	s := x.anyService()
	n := uint64(1 + x.rng.IntN(chaosMaxReplicas))
	if n == s.replicas {
		n = n%chaosMaxReplicas + 1
	}
	x.update(s, fmt.Sprintf("scale %d→%d", s.replicas, n), func(spec *api.ServiceSpec) { spec.GetReplicated().Replicas = n })
}

func (x *chaos) opUpdate() {
	s := x.anyService()
	s.gen++
	env := s.env(0)
	x.update(s, "update env "+strings.Join(env, " "), func(spec *api.ServiceSpec) { spec.Task.Container.Env = env })
	s.failing = false
}

// opFail makes a service's tasks exit with code 1 after a short run: the restart policy
// replaces them, in the same slot, until the next update of the service.
func (x *chaos) opFail() {
	s := x.anyService()
	s.gen++
	env := s.env(time.Duration(1+x.rng.IntN(4)) * 500 * time.Millisecond)
	x.update(s, "fail tasks with env "+strings.Join(env, " "), func(spec *api.ServiceSpec) { spec.Task.Container.Env = env })
	s.failing = true
}

// heal ends the task failures opFail started.
func (x *chaos) heal() {
	for _, s := range x.services {
		if s.failing {
			s.gen++
			env := s.env(0)
			x.update(s, "heal: update env "+strings.Join(env, " "), func(spec *api.ServiceSpec) { spec.Task.Container.Env = env })
			s.failing = false
		}
	}
}

// opPin sets or moves the pin of a slot (it may not exist yet) to a fresh address.
func (x *chaos) opPin() {
	s := x.anyService()
	slot := uint64(1 + x.rng.IntN(chaosMaxReplicas))
	addr := x.freshPin()
	if !addr.IsValid() {
		x.note("pin: no fresh address left; skipped")
		return
	}
	if s.pins == nil {
		s.pins = make(map[uint64]string)
	}
	old := s.pins[slot]
	s.pins[slot] = addr.String()
	pins := chaosPins(s.pins)
	svc := x.update(s, fmt.Sprintf("pin slot %d %q→%s of", slot, old, addr), func(spec *api.ServiceSpec) {
		spec.Task.Networks[0].Ips = pins
	})
	s.epochs[slot] = append(s.epochs[slot], chaosEpoch{svc.SpecVersion, addr})
}

func (x *chaos) available(w int) bool { return !x.dead[w] && !x.drained[w] }

func (x *chaos) countAvailable() int {
	n := 0
	for _, w := range chaosWorkers {
		if x.available(w) {
			n++
		}
	}
	return n
}

func (x *chaos) canDrain() bool { return x.countAvailable() >= 2 }

func (x *chaos) anyDrained() bool {
	return slices.ContainsFunc(chaosWorkers, func(w int) bool { return x.drained[w] })
}

func (x *chaos) pickWorker(f func(int) bool) int {
	var ws []int
	for _, w := range chaosWorkers {
		if f(w) {
			ws = append(ws, w)
		}
	}
	return ws[x.rng.IntN(len(ws))]
}

func (x *chaos) opDrain() {
	w := x.pickWorker(x.available)
	x.note("drain node-%d", w)
	x.setAvailability(w, api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	x.drained[w] = true
}

func (x *chaos) opActivate() {
	w := x.pickWorker(func(w int) bool { return x.drained[w] })
	x.note("activate node-%d", w)
	x.setAvailability(w, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
	x.drained[w] = false
}

// canKillWorker allows one worker down at a time, and always leaves one that takes tasks.
func (x *chaos) canKillWorker() bool { return !x.workerDown() && x.countAvailable() >= 2 }

func (x *chaos) workerDown() bool {
	return slices.ContainsFunc(chaosWorkers, func(w int) bool { return x.dead[w] })
}

func (x *chaos) opKillWorker() {
	w := x.pickWorker(x.available)
	down := x.downFor()
	x.note("kill -9 node-%d (for at least %s)", w, down)
	x.c.node(w).kill()
	x.dead[w] = true
	x.upAfter[w] = time.Now().Add(down)
}

// downFor draws how long a killed process stays down: sometimes less than the 3s a node takes
// to be declared down, sometimes more.
func (x *chaos) downFor() time.Duration {
	return time.Duration(1+x.rng.IntN(16)) * 500 * time.Millisecond
}

func (x *chaos) mayRestart(n int) bool { return x.dead[n] && !time.Now().Before(x.upAfter[n]) }

func (x *chaos) workerMayRestart() bool { return slices.ContainsFunc(chaosWorkers, x.mayRestart) }

func (x *chaos) opRestartWorker() {
	w := x.pickWorker(x.mayRestart)
	x.note("restart node-%d", w)
	x.c.start(w)
	x.dead[w] = false
}

func (x *chaos) managersUp() bool {
	return !slices.ContainsFunc(chaosManagers, func(m int) bool { return x.dead[m] })
}

func (x *chaos) managerMayRestart() bool { return slices.ContainsFunc(chaosManagers, x.mayRestart) }

func (x *chaos) opRestartManager() {
	m := slices.IndexFunc(chaosManagers, x.mayRestart)
	n := chaosManagers[m]
	x.note("restart manager node-%d", n)
	x.forget(n)
	x.c.start(n)
	x.dead[n] = false
}

func (x *chaos) opSettle() {
	x.heal()
	x.waitConverged("a settle")
}

// allocatorState asks manager n for its allocator state.
func (x *chaos) allocatorState(n int) (*api.GetAllocatorStateResponse, error) {
	ctx, cancel := chaosCtx()
	defer cancel()
	return x.client(n).GetAllocatorState(ctx, &api.GetAllocatorStateRequest{})
}

// opKillLeaderQuiet waits until the cluster is quiet, takes the leader's allocator dump, kills
// the leader, and checks that the new leader rebuilt exactly that dump, finding nothing
// inconsistent.
func (x *chaos) opKillLeaderQuiet() {
	x.heal()
	x.waitManagersReachable()
	leader, dump := x.waitQuiet()
	x.note("kill -9 the leader node-%d (quiet; allocator dump at version %d, %d bytes)", leader, dump.Version, len(dump.StateJson))
	x.killManager(leader)
	rep := x.newLeaderReport(leader)
	if rep.RebuiltJson != dump.StateJson {
		x.fail("the new leader's rebuilt allocator state (version %d) differs from the state the old leader node-%d had when quiet (version %d):\n%s",
			rep.RebuiltVersion, leader, dump.Version, chaosDiffDumps(dump.StateJson, rep.RebuiltJson))
	}
}

// opKillLeaderBusy kills the leader whatever it is doing: the new leader's rebuild must find
// the records consistent.
func (x *chaos) opKillLeaderBusy() {
	x.waitManagersReachable()
	l, err := x.findLeader()
	if err != nil {
		x.fail("find the leader: %v", err)
	}
	x.note("kill -9 the leader node-%d (busy)", l)
	x.killManager(l)
	x.newLeaderReport(l)
}

func (x *chaos) killManager(n int) {
	x.c.node(n).kill()
	x.dead[n] = true
	x.upAfter[n] = time.Now().Add(x.downFor())
	x.forget(n)
	x.leader = 0
}

// newLeaderReport waits for a leader other than old whose allocator runs, checks that its
// rebuild found nothing inconsistent, and returns its state.
func (x *chaos) newLeaderReport(old int) *api.GetAllocatorStateResponse {
	x.t.Helper()
	x.leaderChanges++
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		for _, m := range chaosManagers {
			if x.dead[m] || m == old {
				continue
			}
			rep, err := x.allocatorState(m)
			if err != nil {
				last = err
				continue
			}
			x.leader = m
			x.note("new leader node-%d: allocator rebuilt at version %d in %s, %d inconsistencies",
				m, rep.RebuiltVersion, rep.GetRebuildDuration().AsDuration().Round(time.Microsecond), len(rep.Inconsistencies))
			if len(rep.Inconsistencies) > 0 {
				x.fail("the new leader node-%d's rebuild found inconsistencies:\n  %s", m, strings.Join(rep.Inconsistencies, "\n  "))
			}
			return rep
		}
		time.Sleep(100 * time.Millisecond)
	}
	x.fail("no new leader with a running allocator 60s after node-%d stopped leading: %v", old, last)
	return nil
}

// waitManagersReachable waits until every manager sees all of them reachable, so that a leader
// kill leaves a quorum that knows the whole log.
func (x *chaos) waitManagersReachable() {
	x.t.Helper()
	deadline := time.Now().Add(chaosConverge)
	for {
		err := func() error {
			for _, m := range chaosManagers {
				ctx, cancel := chaosCtx()
				resp, err := x.client(m).ListNodes(ctx, &api.ListNodesRequest{})
				cancel()
				if err != nil {
					return fmt.Errorf("node %d: %w", m, err)
				}
				for _, n := range resp.Nodes {
					if ms := n.GetManagerStatus(); ms != nil && ms.Reachability != api.Reachability_REACHABILITY_REACHABLE {
						return fmt.Errorf("node %d sees %s %s", m, n.GetDescription().GetHostname(), ms.Reachability)
					}
				}
			}
			return nil
		}()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			x.fail("managers not all reachable after %s: %v", chaosConverge, err)
		}
		x.pause(100 * time.Millisecond)
	}
}

// waitQuiet waits until the services have converged and the leader's allocator dump holds
// still, and returns the leader and its dump.
func (x *chaos) waitQuiet() (int, *api.GetAllocatorStateResponse) {
	x.t.Helper()
	deadline := time.Now().Add(chaosConverge)
	for {
		x.waitConverged("a quiet cluster before a leader kill")
		l := x.leader
		first, err1 := x.allocatorState(l)
		time.Sleep(300 * time.Millisecond)
		second, err2 := x.allocatorState(l)
		if err1 == nil && err2 == nil && first.StateJson == second.StateJson && first.LeaderNodeId == second.LeaderNodeId {
			if s := x.mustCheck("before a leader kill"); s.from == l && x.converged(s) == nil {
				return l, second
			}
		}
		if time.Now().After(deadline) {
			x.fail("the leader's allocator state did not hold still for 300ms within %s (%v, %v)", chaosConverge, err1, err2)
		}
	}
}

// waitConverged waits until every service runs its replicas at its current spec, one task per
// slot, the workers' states match what the test did to them, and no update is rolling.
func (x *chaos) waitConverged(what string) {
	x.t.Helper()
	deadline := time.Now().Add(chaosConverge)
	start := time.Now()
	for {
		s := x.mustCheck("waiting for " + what)
		err := x.converged(s)
		if err == nil {
			x.note("converged for %s after %s", what, time.Since(start).Round(10*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			x.fail("the cluster did not converge for %s within %s: %v\n%s", what, chaosConverge, err, x.summary(s))
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// summary lists, per service, the tasks that may still run.
func (x *chaos) summary(s *chaosSnapshot) string {
	var b strings.Builder
	for _, cs := range x.services {
		svc := s.services[cs.id]
		fmt.Fprintf(&b, "%s: spec version %d, replicas %d, update %s %q\n", cs.name, svc.GetSpecVersion(), svc.GetSpec().GetReplicated().GetReplicas(),
			svc.GetUpdateStatus().GetState(), svc.GetUpdateStatus().GetMessage())
		var lines []string
		for _, t := range s.tasks {
			if t.ServiceId == cs.id && (t.DesiredState <= api.TaskState_TASK_STATE_RUNNING || t.GetStatus().GetState() <= api.TaskState_TASK_STATE_RUNNING) {
				lines = append(lines, "  "+s.describe(t, x.netID))
			}
		}
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	return b.String()
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
