package e2e

// This file owns the helpers of the sticky-IP test (sticky_test.go): the
// netctl binary, reading a service's slot addresses from its tasks and its
// bindings, the watch that samples every task all along the test for two
// live tasks on one address or a slot's task on another address than the
// slot's, the leader's allocator dumps and their differences, and stopping
// a manager gracefully.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/allocator"
)

var (
	netctlOnce sync.Once
	netctlErr  error
)

// netctl runs netctl against node n, building it on first use the way
// TestMain builds shoalctl. It returns stdout; the error carries stderr.
func (c *cluster) netctl(n int, args ...string) (string, error) {
	c.t.Helper()
	netctlOnce.Do(func() {
		build := exec.Command("go", "build", "-o", binDir+"/", "github.com/shoal/shoal/cmd/netctl")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			netctlErr = fmt.Errorf("build netctl: %w\n%s", err, out)
		}
	})
	if netctlErr != nil {
		c.t.Fatal(netctlErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "netctl"), append([]string{"--socket", c.node(n).sock}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("netctl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// slotAddrs maps a replicated service's slots to their addresses on one
// network, with the prefix length ("198.18.1.5/24").
type slotAddrs map[uint64]string

func (s slotAddrs) String() string {
	slots := make([]uint64, 0, len(s))
	for slot := range s {
		slots = append(slots, slot)
	}
	slices.Sort(slots)
	parts := make([]string, len(slots))
	for i, slot := range slots {
		parts[i] = fmt.Sprintf("%d=%s", slot, s[slot])
	}
	return strings.Join(parts, " ")
}

// attachment is t's address on network, "" when it has none there.
func attachment(t *api.Task, network string) string {
	for _, att := range t.GetNetworks() {
		if att.GetNetworkId() == network {
			return att.GetAddress()
		}
	}
	return ""
}

// runningAddrs reads the addresses of v's running tasks on network, by
// slot; an error when one has none or two slots share one.
func runningAddrs(v *view, network string) (slotAddrs, error) {
	out := slotAddrs{}
	owner := map[string]uint64{}
	for _, t := range v.running() {
		addr := attachment(t, network)
		if addr == "" {
			return nil, fmt.Errorf("running task %s of slot %d has no address on network %s (networks %v)", t.Id, t.Slot, network, t.GetNetworks())
		}
		if other, dup := owner[addr]; dup {
			return nil, fmt.Errorf("slots %d and %d both run with %s", other, t.Slot, addr)
		}
		owner[addr] = t.Slot
		out[t.Slot] = addr
	}
	return out, nil
}

// slotBindings lists the bindings of service on network by slot, and its
// VIP binding (nil if none).
func (c *cluster) slotBindings(service, network string) (map[uint64]*api.IPBinding, *api.IPBinding, error) {
	resp, err := c.anyControl().ListBindings(ctxT(c.t, 10*time.Second), &api.ListBindingsRequest{ServiceIds: []string{service}, NetworkIds: []string{network}})
	if err != nil {
		return nil, nil, err
	}
	slots := map[uint64]*api.IPBinding{}
	var vip *api.IPBinding
	for _, b := range resp.Bindings {
		switch b.Kind {
		case api.IPBinding_KIND_SLOT:
			if slots[b.Slot] != nil {
				return nil, nil, fmt.Errorf("slot %d has two bindings, %s and %s", b.Slot, slots[b.Slot].Id, b.Id)
			}
			slots[b.Slot] = b
		case api.IPBinding_KIND_VIP:
			vip = b
		default:
			return nil, nil, fmt.Errorf("replicated service %s has a %s binding %s", service, b.Kind, b.Id)
		}
	}
	return slots, vip, nil
}

// addrsAgree checks, once, that the service runs replicas tasks of its
// spec, each with its slot's address in want, and that its bindings say
// the same: slots up to replicas bound to their running task, the others
// of want held with their address. It returns the running tasks' addresses.
func (c *cluster) addrsAgree(service, network string, replicas int, want slotAddrs) (slotAddrs, error) {
	v, err := c.view(service)
	if err != nil {
		return nil, err
	}
	if err := v.converged(replicas); err != nil {
		return nil, err
	}
	got, err := runningAddrs(v, network)
	if err != nil {
		return nil, err
	}
	running := map[uint64]*api.Task{}
	for _, t := range v.running() {
		running[t.Slot] = t
		if want[t.Slot] != got[t.Slot] {
			return nil, fmt.Errorf("slot %d runs task %s with %s, want %s", t.Slot, t.Id, got[t.Slot], want[t.Slot])
		}
	}
	bindings, _, err := c.slotBindings(service, network)
	if err != nil {
		return nil, err
	}
	for slot, addr := range want {
		b := bindings[slot]
		switch {
		case b == nil:
			return nil, fmt.Errorf("slot %d (%s) has no binding", slot, addr)
		case b.Address != addr:
			return nil, fmt.Errorf("slot %d's binding %s says %s, want %s", slot, b.Id, b.Address, addr)
		case slot <= uint64(replicas) && b.TaskId != running[slot].GetId():
			return nil, fmt.Errorf("slot %d's binding names task %s, slot %d runs %s", slot, b.TaskId, slot, running[slot].GetId())
		case slot <= uint64(replicas) && b.HeldSince != nil:
			return nil, fmt.Errorf("slot %d runs but its binding is held since %s", slot, b.HeldSince.AsTime())
		case slot > uint64(replicas) && b.HeldSince == nil:
			return nil, fmt.Errorf("slot %d was scaled away but its binding (%s) is not held", slot, b.Address)
		}
	}
	for slot, b := range bindings {
		if _, ok := want[slot]; !ok {
			return nil, fmt.Errorf("binding %s of slot %d (%s) is not one the test expects (%s)", b.Id, slot, b.Address, want)
		}
	}
	return got, nil
}

// waitAddrsAgree waits until addrsAgree holds.
func (c *cluster) waitAddrsAgree(service, network string, replicas int, want slotAddrs, timeout time.Duration) slotAddrs {
	c.t.Helper()
	var got slotAddrs
	eventually(c.t, timeout, fmt.Sprintf("%s runs %d tasks on their slots' addresses", service, replicas), func() error {
		var err error
		got, err = c.addrsAgree(service, network, replicas, want)
		return err
	})
	return got
}

// bindingsByID is every binding of the cluster, by ID.
func (c *cluster) bindingsByID() map[string]*api.IPBinding {
	c.t.Helper()
	resp, err := c.anyControl().ListBindings(ctxT(c.t, 10*time.Second), &api.ListBindingsRequest{})
	if err != nil {
		c.t.Fatalf("list bindings: %v", err)
	}
	out := make(map[string]*api.IPBinding, len(resp.Bindings))
	for _, b := range resp.Bindings {
		out[b.Id] = b
	}
	return out
}

// addrWatch samples every task of the cluster, from its start until it is
// stopped, through whichever manager answers, and remembers what breaks
// the sticky rules:
//   - two live tasks with one address on a network, where live is what
//     fencing counts as possibly using its address: out of NEW, not ended,
//     on a node not declared down (or on none yet but meant to run). A
//     task whose address moved on while its node was down is ORPHANED by
//     the allocator, so it is not live either when its node comes back;
//   - a live task of a networked service without its addresses;
//   - a task of the watched service, in any state, with another address
//     than its slot's in want.
type addrWatch struct {
	service string // ID
	network string // ID
	want    slotAddrs
	clients []api.ControlClient

	stopc, done chan struct{}

	mu       sync.Mutex
	samples  int
	seen     map[string]bool
	problems []string
}

// watchAddrs starts a watch of managers 1..managers; t's cleanup stops it.
func (c *cluster) watchAddrs(t *testing.T, managers int, service, network string, want slotAddrs) *addrWatch {
	w := &addrWatch{service: service, network: network, want: want, stopc: make(chan struct{}), done: make(chan struct{}),
		seen: map[string]bool{}}
	for n := 1; n <= managers; n++ {
		conn, err := grpc.NewClient("unix://"+c.node(n).sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatalf("dial node %d's control socket: %v", n, err)
		}
		t.Cleanup(func() { conn.Close() })
		w.clients = append(w.clients, api.NewControlClient(conn))
	}
	go w.run()
	t.Cleanup(w.stop)
	return w
}

func (w *addrWatch) run() {
	defer close(w.done)
	next := 0
	for {
		select {
		case <-w.stopc:
			return
		case <-time.After(50 * time.Millisecond):
		}
		for range w.clients {
			ok := w.sample(w.clients[next])
			if ok {
				break
			}
			next = (next + 1) % len(w.clients)
		}
	}
}

func (w *addrWatch) stop() {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
}

// sample reads nodes, tasks and nodes again from one manager (its store
// only moves forward), so a node counts as down when either read says so.
func (w *addrWatch) sample(cl api.ControlClient) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	before, err := cl.ListNodes(ctx, &api.ListNodesRequest{})
	if err != nil {
		return false
	}
	tasks, err := cl.ListTasks(ctx, &api.ListTasksRequest{})
	if err != nil {
		return false
	}
	after, err := cl.ListNodes(ctx, &api.ListNodesRequest{})
	if err != nil {
		return false
	}
	down := map[string]bool{}
	for _, n := range append(before.Nodes, after.Nodes...) {
		if n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN {
			down[n.Id] = true
		}
	}
	var problems []string
	holders := map[string][]*api.Task{} // network/address → live tasks
	for _, t := range tasks.Tasks {
		if t.ServiceId == w.service {
			if addr := attachment(t, w.network); addr != "" && addr != w.want[t.Slot] {
				problems = append(problems, fmt.Sprintf("task %s of slot %d (%s) has %s, the slot's address is %s",
					t.Id, t.Slot, describeTask(t), addr, w.want[t.Slot]))
			}
		}
		if !liveTask(t, down) {
			continue
		}
		if len(t.GetNetworks()) != len(t.GetSpec().GetNetworks()) {
			problems = append(problems, fmt.Sprintf("live task %s (%s) has %d addresses for %d networks",
				t.Id, describeTask(t), len(t.GetNetworks()), len(t.GetSpec().GetNetworks())))
		}
		for _, att := range t.GetNetworks() {
			k := att.GetNetworkId() + "/" + addrOf(att.GetAddress())
			holders[k] = append(holders[k], t)
		}
	}
	for k, ts := range holders {
		if len(ts) < 2 {
			continue
		}
		var who []string
		for _, t := range ts {
			who = append(who, fmt.Sprintf("%s (%s)", t.Id, describeTask(t)))
		}
		sort.Strings(who)
		problems = append(problems, fmt.Sprintf("%d live tasks hold %s: %s", len(ts), k, strings.Join(who, ", ")))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	for _, p := range problems {
		if !w.seen[p] {
			w.seen[p] = true
			w.problems = append(w.problems, time.Now().Format("15:04:05.000")+" "+p)
		}
	}
	return true
}

// liveTask says whether t may be using its addresses, by the allocator's
// fencing rule: it left NEW and has not ended, and its node is not down
// (a task with no node yet counts while it is meant to run).
func liveTask(t *api.Task, down map[string]bool) bool {
	st := t.GetStatus().GetState()
	if st == api.TaskState_TASK_STATE_NEW || st > api.TaskState_TASK_STATE_RUNNING {
		return false
	}
	if t.NodeId == "" {
		return t.DesiredState <= api.TaskState_TASK_STATE_RUNNING
	}
	return !down[t.NodeId]
}

func describeTask(t *api.Task) string {
	node := t.NodeId
	if node == "" {
		node = "no node"
	}
	return fmt.Sprintf("%s.%d desired %s observed %s on %s", t.ServiceName, t.Slot, shortState(t.DesiredState), shortState(t.Status.GetState()), node)
}

// addrOf is an address without its prefix length.
func addrOf(s string) string {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().String()
	}
	return s
}

// check fails t with what the watch saw since the last check, and makes
// sure it sampled at all since then.
func (w *addrWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	problems, samples := w.problems, w.samples
	w.problems, w.samples = nil, 0
	w.mu.Unlock()
	for _, p := range problems {
		t.Errorf("address watch: %s", p)
	}
	if samples == 0 {
		t.Errorf("address watch: no sample of the tasks since the last check")
	}
	t.Logf("address watch: %d samples, %d problems", samples, len(problems))
}

// allocatorState asks node n's manager for its allocator's state.
func (c *cluster) allocatorState(n int) (*api.GetAllocatorStateResponse, error) {
	return c.control(n).GetAllocatorState(ctxT(c.t, 5*time.Second), &api.GetAllocatorStateRequest{})
}

// quietDump waits until the leader's allocator state stays the same for
// longer than an allocator tick and returns the leader and that state.
func (c *cluster) quietDump() (int, *api.GetAllocatorStateResponse) {
	c.t.Helper()
	var (
		leader int
		st     *api.GetAllocatorStateResponse
	)
	eventually(c.t, 60*time.Second, "the leader's allocator state is quiet", func() error {
		l, err := c.leader(1)
		if err != nil {
			return err
		}
		first, err := c.allocatorState(l)
		if err != nil {
			return err
		}
		time.Sleep(1500 * time.Millisecond)
		again, err := c.allocatorState(l)
		if err != nil {
			return err
		}
		if first.StateJson != again.StateJson {
			return fmt.Errorf("the state changed within 1.5s: %s", dumpDiff(first.StateJson, again.StateJson))
		}
		leader, st = l, again
		return nil
	})
	return leader, st
}

// waitLeaderAllocator waits for a leader other than not, among the live
// managers, whose allocator runs, and returns it with its state.
func (c *cluster) waitLeaderAllocator(not int) (int, *api.GetAllocatorStateResponse) {
	c.t.Helper()
	var (
		leader int
		st     *api.GetAllocatorStateResponse
	)
	eventually(c.t, 60*time.Second, "a new leader's allocator runs", func() error {
		for _, p := range c.liveNodes() {
			if p.n == not || !c.isManagerProc(p) {
				continue
			}
			l, err := c.leader(p.n)
			if err != nil {
				return err
			}
			if l == not {
				return fmt.Errorf("node %d still sees node-%d as the leader", p.n, not)
			}
			if st, err = c.allocatorState(l); err != nil {
				return fmt.Errorf("node-%d: %w", l, err)
			}
			leader = l
			return nil
		}
		return fmt.Errorf("no live manager")
	})
	return leader, st
}

// dumpHolds checks that an allocator dump binds every address of want,
// so that two dumps compared are not both empty.
func dumpHolds(state string, want slotAddrs) error {
	var d allocator.Dump
	if err := json.Unmarshal([]byte(state), &d); err != nil {
		return fmt.Errorf("unreadable dump: %w", err)
	}
	bound := map[string]bool{}
	for _, b := range d.Bindings {
		bound[b.Address] = true
	}
	for slot, addr := range want {
		if !bound[addr] {
			return fmt.Errorf("slot %d's address %s is in none of its %d bindings", slot, addr, len(d.Bindings))
		}
	}
	return nil
}

// dumpDiff describes how two allocator dumps differ: binding by binding,
// subnet by subnet.
func dumpDiff(old, new string) string {
	var a, b allocator.Dump
	if err := json.Unmarshal([]byte(old), &a); err != nil {
		return fmt.Sprintf("old dump unreadable: %v", err)
	}
	if err := json.Unmarshal([]byte(new), &b); err != nil {
		return fmt.Sprintf("new dump unreadable: %v", err)
	}
	var out []string
	diff := func(what string, x, y map[string]string) {
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			if x[k] != y[k] {
				out = append(out, fmt.Sprintf("%s %s: old %s, new %s", what, k, orNone(x[k]), orNone(y[k])))
			}
		}
	}
	bindings := func(d allocator.Dump) map[string]string {
		m := map[string]string{}
		for _, bd := range d.Bindings {
			raw, _ := json.Marshal(bd)
			m[bd.Key] = string(raw)
		}
		return m
	}
	subnets := func(d allocator.Dump) map[string]string {
		m := map[string]string{}
		for _, nd := range d.Networks {
			for _, sd := range nd.Subnets {
				raw, _ := json.Marshal(sd)
				m[nd.ID+" "+sd.Subnet] = string(raw)
			}
		}
		return m
	}
	diff("binding", bindings(a), bindings(b))
	diff("subnet", subnets(a), subnets(b))
	if len(out) == 0 {
		if old == new {
			return "no difference"
		}
		return "equal once decoded, different bytes"
	}
	return strings.Join(out, "; ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// stopGracefully stops node n with SIGTERM, as an operator stops a
// manager, and kills it if it has not exited within timeout.
func (c *cluster) stopGracefully(n int, timeout time.Duration) {
	c.t.Helper()
	p := c.node(n)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		c.t.Errorf("shoald %d did not exit within %s of SIGTERM; killed", n, timeout)
		p.kill()
	}
}

// busiestWorker is the worker among hosts that runs the most of v's tasks.
func busiestWorker(v *view, hosts ...string) string {
	best, most := "", -1
	per := v.perHost()
	for _, h := range hosts {
		if per[h] > most {
			best, most = h, per[h]
		}
	}
	return best
}

// tableRows splits a CLI table into rows of fields, header first.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.TrimSpace(line) != "" {
			rows = append(rows, strings.Fields(line))
		}
	}
	return rows
}
