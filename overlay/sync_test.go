package overlay

// This file tests Sync on the test bed: tasks on different nodes reach each other, the kernel
// holds exactly the desired entries, repeated Syncs change nothing, hand edits are undone, and
// moved and withdrawn endpoints are followed.

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestSyncConnectsTasksAcrossNodes(t *testing.T) {
	bed := newTestbed(t, 3)
	n0, n1, n2 := bed.nodes[0], bed.nodes[1], bed.nodes[2]
	a, b, c, d := n0.addTask(taskIP(10)), n1.addTask(taskIP(11)), n2.addTask(taskIP(12)), n0.addTask(taskIP(13))
	want := bed.desired(a, b, c, d)

	got := bed.syncAll(want)
	// Each node: two remote nodes (an all-zeros entry each) and the remote tasks (an FDB, a
	// neighbour and a bridge entry each).
	wantChanges := []Changes{
		{Added: 2 + 3*2, DeviceCreated: true}, // n0: b, c remote
		{Added: 2 + 3*3, DeviceCreated: true}, // n1: a, c, d remote
		{Added: 2 + 3*3, DeviceCreated: true}, // n2: a, b, d remote
	}
	for i, node := range bed.nodes {
		if got[i] != wantChanges[i] {
			t.Errorf("%s: first Sync changed %+v, want %+v", node.name, got[i], wantChanges[i])
		}
		node.checkDevice(t, testNetwork)
		node.checkEntries(t, want)
	}

	for _, p := range []struct{ from, to *testTask }{{a, b}, {a, c}, {b, c}, {c, d}, {d, b}, {a, d}} {
		if err := p.from.ping(p.to.ip); err != nil {
			t.Errorf("ping: %v", err)
		}
	}
	for _, p := range []struct{ from, to *testTask }{{a, c}, {c, b}} {
		if err := p.from.tcpExchange(p.to); err != nil {
			t.Errorf("TCP: %v", err)
		}
	}

	for i, ch := range bed.syncAll(want) {
		if ch.Changed() {
			t.Errorf("%s: second Sync with the same state changed %+v, want nothing", bed.nodes[i].name, ch)
		}
	}
}

func TestSyncFollowsMovedEndpoint(t *testing.T) {
	bed := newTestbed(t, 3)
	n0, n1, n2 := bed.nodes[0], bed.nodes[1], bed.nodes[2]
	a, b := n0.addTask(taskIP(20)), n1.addTask(taskIP(21))
	moving := n1.addTask(taskIP(22))
	bed.syncAll(bed.desired(a, b, moving))
	if err := a.ping(moving.ip); err != nil {
		t.Fatalf("before the move: %v", err)
	}

	// The task is rescheduled to n2 with its sticky IP, and so its MAC.
	moving.remove()
	moved := n2.addTask(moving.ip)
	want := bed.desired(a, b, moved)
	got := bed.syncAll(want)
	wantChanges := []Changes{
		{Replaced: 1}, // n0: the FDB entry now points at n2 (the bridge entry stays)
		{Added: 3},    // n1: the task was local, now remote
		{Removed: 3},  // n2: the task was remote, now local
	}
	for i, node := range bed.nodes {
		if got[i] != wantChanges[i] {
			t.Errorf("%s: Sync after the move changed %+v, want %+v", node.name, got[i], wantChanges[i])
		}
		node.checkEntries(t, want)
	}
	for _, from := range []*testTask{a, b} {
		if err := from.ping(moved.ip); err != nil {
			t.Errorf("after the move: %v", err)
		}
	}
	if err := moved.tcpExchange(a); err != nil {
		t.Errorf("after the move: TCP: %v", err)
	}
}

func TestSyncWithdrawsEndpointsAndPeers(t *testing.T) {
	bed := newTestbed(t, 3)
	n0, n1, n2 := bed.nodes[0], bed.nodes[1], bed.nodes[2]
	a, b, c := n0.addTask(taskIP(30)), n1.addTask(taskIP(31)), n2.addTask(taskIP(32))
	bed.syncAll(bed.desired(a, b, c))

	// b stops: its endpoint is withdrawn everywhere.
	b.remove()
	want := bed.desired(a, c)
	got := bed.syncAll(want)
	wantChanges := []Changes{{Removed: 3}, {}, {Removed: 3}} // n1 held no entries for its own task
	for i, node := range bed.nodes {
		if got[i] != wantChanges[i] {
			t.Errorf("%s: Sync after b stopped changed %+v, want %+v", node.name, got[i], wantChanges[i])
		}
		node.checkEntries(t, want)
	}

	// n1 leaves the network: the others stop replicating broadcasts to it.
	want.Peers = []netip.Addr{n0.vtep, n2.vtep}
	for _, node := range []*testNode{n0, n2} {
		if got, want := node.sync(want), (Changes{Removed: 1}); got != want {
			t.Errorf("%s: Sync after n1 left changed %+v, want %+v", node.name, got, want)
		}
		node.checkEntries(t, want)
	}
	if err := a.ping(c.ip); err != nil {
		t.Errorf("between the remaining endpoints: %v", err)
	}
}

func TestSyncUndoesHandEdits(t *testing.T) {
	bed := newTestbed(t, 2)
	n0, n1 := bed.nodes[0], bed.nodes[1]
	a, b := n0.addTask(taskIP(40)), n1.addTask(taskIP(41))
	want := bed.desired(a, b)
	bed.syncAll(want)

	handEdit(t, n0, strayEdits...)
	got := n0.sync(want)
	if want := (Changes{Removed: 3}); got != want {
		t.Errorf("Sync after hand-added entries changed %+v, want %+v", got, want)
	}
	n0.checkEntries(t, want)
	if err := a.ping(b.ip); err != nil {
		t.Errorf("after the repair: %v", err)
	}
}

func TestSyncWithoutBridge(t *testing.T) {
	bed := newTestbed(t, 1)
	node := bed.nodes[0]
	d := bed.desired()
	d.Network.Bridge = "shlnotyet"
	var err error
	var ch Changes
	inNetns(t, node.ns, func() error {
		ch, err = node.mgr.Sync(d)
		return nil
	})
	if !errors.Is(err, ErrNoBridge) {
		t.Fatalf("Sync without the bridge: %v, want ErrNoBridge", err)
	}
	if ch.Changed() {
		t.Errorf("Sync without the bridge changed %+v", ch)
	}
	if node.hasDevice(t, DeviceName(d.Network.ID)) {
		t.Errorf("Sync without the bridge created device %s", DeviceName(d.Network.ID))
	}
}

func TestSyncMakesEntriesPermanent(t *testing.T) {
	bed := newTestbed(t, 2)
	n0, n1 := bed.nodes[0], bed.nodes[1]
	a, b := n0.addTask(taskIP(42)), n1.addTask(taskIP(43))
	want := bed.desired(a, b)
	bed.syncAll(want)

	// A VXLAN FDB entry is permanent or reachable (dynamic, it ages out).
	dynamic := func(n *netlink.Neigh) error { n.State = netlink.NUD_REACHABLE; return netlink.NeighSet(n) }
	dynamicFlood := func(n *netlink.Neigh) error {
		if err := netlink.NeighDel(n); err != nil {
			return err
		}
		n.State = netlink.NUD_REACHABLE
		return netlink.NeighAppend(n)
	}
	otherVNI := func(n *netlink.Neigh) error { n.VNI = 7; return netlink.NeighSet(n) }
	reachable := func(n *netlink.Neigh) error { n.State = netlink.NUD_REACHABLE; return netlink.NeighSet(n) }
	handEdit(t, n0,
		fdbOp("make b's FDB entry dynamic", b.mac, n1.vtep, dynamic),
		fdbOp("make n1's flood destination dynamic", floodMAC, n1.vtep, dynamicFlood),
		neighOp("make b's neighbour entry reachable", b.ip, b.mac, reachable),
	)
	if fdb, neigh := n0.kernelEntries(t, DeviceName(testNetworkID)); len(fdb) != 2 || len(neigh) != 1 ||
		!strings.HasSuffix(fdb[0], "(not permanent)") || !strings.HasSuffix(fdb[1], "(not permanent)") ||
		!strings.HasSuffix(neigh[0], "(not permanent)") {
		t.Fatalf("the hand edits did not take: FDB %q, neighbours %q", fdb, neigh)
	}
	if got, want := n0.sync(want), (Changes{Replaced: 3}); got != want {
		t.Errorf("Sync after entries were made not permanent changed %+v, want %+v", got, want)
	}
	n0.checkEntries(t, want)

	handEdit(t, n0, fdbOp("give b's FDB entry another VNI", b.mac, n1.vtep, otherVNI))
	if got, want := n0.sync(want), (Changes{Replaced: 1}); got != want {
		t.Errorf("Sync after b's entry got another VNI changed %+v, want %+v", got, want)
	}
	if r := n0.inspect(want); !r.Clean() {
		t.Errorf("Inspect after the repairing Sync is not clean: %+v", r)
	}
}

// Broadcasts go to every VTEP in Peers and every VTEP of a remote endpoint; a VTEP only an
// endpoint named loses its destination with its last endpoint, a listed peer keeps it.
func TestSyncFloodsToPeersAndEndpointVTEPs(t *testing.T) {
	node := newLoneNode(t, "node")
	d := Desired{
		Network:   testNetwork,
		Endpoints: []Endpoint{updEndpoint(10, updP1), updEndpoint(11, updP2)},
		Peers:     []netip.Addr{updP1, updP3, updLocal},
	}
	if got, want := node.sync(d), (Changes{Added: 3*2 + 3, DeviceCreated: true}); got != want {
		t.Errorf("first Sync changed %+v, want %+v", got, want)
	}
	node.checkEntries(t, d)
	d.Endpoints = nil
	if got, want := node.sync(d), (Changes{Removed: 3*2 + 1}); got != want {
		t.Errorf("Sync without endpoints changed %+v, want %+v (P2's destination gone, P1's and P3's kept)", got, want)
	}
	fdb, _ := node.kernelEntries(t, DeviceName(testNetworkID))
	if want := []string{"00:00:00:00:00:00 dst " + updP1.String(), "00:00:00:00:00:00 dst " + updP3.String()}; !slices.Equal(fdb, want) {
		t.Errorf("FDB entries %q, want %q", fdb, want)
	}
}

// Frames to a remote task go to the VXLAN device alone: the bridge holds a static entry for its
// MAC on the device's port, so neither the other local tasks nor (through hairpin) the sender get
// a copy of them.
func TestSyncKeepsRemoteUnicastOffLocalPorts(t *testing.T) {
	bed := newTestbed(t, 2)
	n0, n1 := bed.nodes[0], bed.nodes[1]
	a, c, b := n0.addTask(taskIP(30)), n0.addTask(taskIP(31)), n1.addTask(taskIP(32))
	bed.syncAll(bed.desired(a, b, c))
	if err := a.ping(b.ip); err != nil { // resolves b's address and warms the path
		t.Fatalf("before counting: %v", err)
	}
	before := c.rxPackets(t)
	const pings = 200
	for range pings {
		if err := a.ping(b.ip); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.tcpExchange(b); err != nil {
		t.Fatal(err)
	}
	// The nodes' multicast (IGMP and MLD reports of their bridges) reaches c all along, a few
	// frames a second; a copy of a's unicast to b would be 200 frames and more.
	if got := c.rxPackets(t) - before; got >= pings/4 {
		t.Errorf("task %s on the sender's node received %d frames while %s sent %d pings and a TCP exchange to %s on another node; want no copy of that unicast", c.ip, got, a.ip, pings, b.ip)
	}
}

// A task that moved here and talked before the Sync that takes its remote entries away has been
// learnt by the bridge on its local port already; the Sync leaves that entry alone (it is no
// longer on the device's port) and the bridge keeps forwarding to the task.
func TestSyncAfterMovedTaskTalked(t *testing.T) {
	bed, a, moved, other := movedTaskThatTalked(t)
	n0 := bed.nodes[0]
	want := bed.desired(a, moved, other)
	if got, wantCh := n0.sync(want), (Changes{Removed: 2}); got != wantCh {
		t.Errorf("Sync after the move changed %+v, want %+v (FDB and neighbour entries; the bridge entry had moved to the task's port)", got, wantCh)
	}
	n0.checkEntries(t, want)
	if err := a.tcpExchange(moved); err != nil {
		t.Errorf("a to the moved task on the same node: %v", err)
	}
}

// movedTaskThatTalked is a bed of two nodes, each Synced while a task on n1 ran: a on n0 and
// the task, which then moved to n0 (moved) and pinged other, a new task on n0, before any Sync
// or Update told n0. The bridge of n0 has learnt moved on its local port.
func movedTaskThatTalked(t *testing.T) (bed *testbed, a, moved, other *testTask) {
	t.Helper()
	bed = newTestbed(t, 2)
	n0, n1 := bed.nodes[0], bed.nodes[1]
	a, moving := n0.addTask(taskIP(40)), n1.addTask(taskIP(41))
	bed.syncAll(bed.desired(a, moving))
	moving.remove()
	moved, other = n0.addTask(moving.ip), n0.addTask(taskIP(42))
	if err := moved.ping(other.ip); err != nil {
		t.Fatalf("the moved task talking on its new node: %v", err)
	}
	return bed, a, moved, other
}

// rxPackets is the number of packets the task's eth0 has received.
func (task *testTask) rxPackets(t *testing.T) uint64 {
	t.Helper()
	var n uint64
	inNetns(t, task.ns, func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		n = link.Attrs().Statistics.RxPackets
		return nil
	})
	return n
}
