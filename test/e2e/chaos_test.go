package e2e

// This file owns the randomized chaos test of sticky IPs (issue 4's acceptance): a seeded run of
// several hundred operations — scale, drain, activate, worker kill and restart, leader kill and
// restart, service update, pin change, task failures — on 3 managers and 3 sim workers, with the
// address invariants checked after every step and the allocator rebuild compared on every leader
// change. Its helpers are named chaos... and live here and in chaos_check_test.go (the oracle);
// the sticky_* files own the step-by-step test of the same rules.

import (
	"context"
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
