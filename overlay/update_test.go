package overlay

// This file tests Update: after Sync(d) and Update(u), a node's kernel holds exactly what
// Sync(d') gives a twin node, d' being d with u applied; Update refuses bad input and works only
// on a network whose last Sync succeeded; tasks reach an endpoint an Update moved.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// The VTEPs of the Update tests' nodes and their peers. The nodes have no underlay: their
// entries are compared, never used.
var (
	updLocal = netip.MustParseAddr("198.18.0.1")
	updP1    = netip.MustParseAddr("198.18.0.2")
	updP2    = netip.MustParseAddr("198.18.0.3")
	updP3    = netip.MustParseAddr("198.18.0.4")
)

// newLoneNode returns a node without underlay: a fresh namespace with the network's bridge and a
// Manager at updLocal.
func newLoneNode(t *testing.T, name string) *testNode {
	t.Helper()
	node := &testNode{bed: &testbed{tb: t}, name: name, ns: newNetns(t), vtep: updLocal}
	inNetns(t, node.ns, func() error { return addBridge(testBridge, testMTU, netip.Prefix{}) })
	m, err := New(Config{LocalVTEP: updLocal, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	node.mgr = m
	return node
}

// update runs Update on the node.
func (node *testNode) update(networkID string, u EndpointUpdate) (ch Changes, err error) {
	node.bed.tb.Helper()
	inNetns(node.bed.tb, node.ns, func() error {
		ch, err = node.mgr.Update(networkID, u)
		return nil
	})
	return ch, err
}

// read runs Read on the node, failing the test on error.
func (node *testNode) read() Kernel {
	tb := node.bed.tb
	tb.Helper()
	var k Kernel
	inNetns(tb, node.ns, func() (err error) { k, err = node.mgr.Read(testNetworkID); return err })
	return k
}

// withUpdate is d with u applied the way EndpointUpdate says: removals, then Set replacing the
// endpoint with the same IP or added.
func withUpdate(d Desired, u EndpointUpdate) Desired {
	out := d
	out.Endpoints = nil
	for _, ep := range d.Endpoints {
		if !slices.Contains(u.Removed, ep.IP) {
			out.Endpoints = append(out.Endpoints, ep)
		}
	}
	for _, ep := range u.Set {
		i := slices.IndexFunc(out.Endpoints, func(e Endpoint) bool { return e.IP == ep.IP })
		if i < 0 {
			out.Endpoints = append(out.Endpoints, ep)
		} else {
			out.Endpoints[i] = ep
		}
	}
	return out
}

// checkSameAsSync fails the test unless updated's kernel holds exactly what a Sync of d gave
// synced: the same device and entries (Read), d's entries as read straight through netlink,
// and nothing for Inspect(d) to report.
func checkSameAsSync(t *testing.T, updated, synced *testNode, d Desired) {
	t.Helper()
	if got, want := fmt.Sprintf("%+v", updated.read()), fmt.Sprintf("%+v", synced.read()); got != want {
		t.Errorf("after Update, Read gives\n %s\nwhere Sync gives\n %s", got, want)
	}
	updated.checkEntries(t, d)
	if r := updated.inspect(d); !r.Clean() {
		t.Errorf("Inspect after Update is not clean: %+v", r)
	}
}

func updEndpoint(n int, vtep netip.Addr) Endpoint {
	ip := taskIP(n)
	return Endpoint{IP: ip, MAC: macOfIP(ip), VTEP: vtep}
}

// updDesired is the network the Update tests start from: two endpoints at peer P1, which
// Peers lists, one at P2, which only its endpoint makes a peer, and a local one; extra ones
// added.
func updDesired(extra ...Endpoint) Desired {
	return Desired{
		Network: testNetwork,
		Endpoints: append([]Endpoint{
			updEndpoint(10, updP1), updEndpoint(11, updP1), updEndpoint(12, updP2), updEndpoint(13, updLocal),
		}, extra...),
		Peers: []netip.Addr{updP1},
	}
}

func TestUpdateProgramsAsSyncWould(t *testing.T) {
	otherMAC := net.HardwareAddr{0x02, 0x43, 0, 0, 0, 10}
	sharesMAC12 := Endpoint{IP: taskIP(15), MAC: macOfIP(taskIP(12)), VTEP: updP2}
	cases := []struct {
		name    string
		extra   []Endpoint // added to updDesired
		u       EndpointUpdate
		changes Changes
	}{
		{name: "add at a VTEP with endpoints", u: EndpointUpdate{Set: []Endpoint{updEndpoint(14, updP2)}},
			changes: Changes{Added: 3}},
		{name: "add at a new VTEP: its all-zeros entry comes", u: EndpointUpdate{Set: []Endpoint{updEndpoint(14, updP3)}},
			changes: Changes{Added: 4}},
		{name: "add at the local VTEP", u: EndpointUpdate{Set: []Endpoint{updEndpoint(14, updLocal)}}},
		{name: "remove the last endpoint of a VTEP: its all-zeros entry goes", u: EndpointUpdate{Removed: []netip.Addr{taskIP(12)}},
			changes: Changes{Removed: 4}},
		{name: "remove the last endpoints of a listed peer: its all-zeros entry stays",
			u: EndpointUpdate{Removed: []netip.Addr{taskIP(10), taskIP(11)}}, changes: Changes{Removed: 6}},
		{name: "remove a local endpoint", u: EndpointUpdate{Removed: []netip.Addr{taskIP(13)}}},
		{name: "remove an IP without endpoint", u: EndpointUpdate{Removed: []netip.Addr{taskIP(99)}}},
		{name: "move to a VTEP with endpoints", u: EndpointUpdate{Set: []Endpoint{updEndpoint(11, updP2)}},
			changes: Changes{Replaced: 1}},
		{name: "move the last endpoint of a VTEP to a new one", u: EndpointUpdate{Set: []Endpoint{updEndpoint(12, updP3)}},
			changes: Changes{Added: 1, Replaced: 1, Removed: 1}},
		{name: "move to the local VTEP", u: EndpointUpdate{Set: []Endpoint{updEndpoint(12, updLocal)}},
			changes: Changes{Removed: 4}},
		{name: "move from the local VTEP", u: EndpointUpdate{Set: []Endpoint{updEndpoint(13, updP1)}},
			changes: Changes{Added: 3}},
		{name: "replace the MAC", u: EndpointUpdate{Set: []Endpoint{{IP: taskIP(10), MAC: otherMAC, VTEP: updP1}}},
			changes: Changes{Added: 2, Replaced: 1, Removed: 2}},
		{name: "set as it is", u: EndpointUpdate{Set: []Endpoint{updEndpoint(10, updP1)}}},
		{name: "remove and set one IP: Set wins",
			u:       EndpointUpdate{Removed: []netip.Addr{taskIP(12)}, Set: []Endpoint{updEndpoint(12, updP1)}},
			changes: Changes{Replaced: 1, Removed: 1}},
		{name: "give a removed endpoint's MAC to another IP at another VTEP",
			u:       EndpointUpdate{Removed: []netip.Addr{taskIP(10)}, Set: []Endpoint{{IP: taskIP(14), MAC: macOfIP(taskIP(10)), VTEP: updP2}}},
			changes: Changes{Added: 1, Replaced: 1, Removed: 1}},
		{name: "remove one of two endpoints that share a MAC: its FDB entry stays", extra: []Endpoint{sharesMAC12},
			u: EndpointUpdate{Removed: []netip.Addr{taskIP(12)}}, changes: Changes{Removed: 1}},
		{name: "move both endpoints that share a MAC", extra: []Endpoint{sharesMAC12},
			u:       EndpointUpdate{Set: []Endpoint{updEndpoint(12, updP3), {IP: sharesMAC12.IP, MAC: sharesMAC12.MAC, VTEP: updP3}}},
			changes: Changes{Added: 1, Replaced: 1, Removed: 1}},
		{name: "several at once",
			u:       EndpointUpdate{Removed: []netip.Addr{taskIP(10)}, Set: []Endpoint{updEndpoint(14, updP3), updEndpoint(11, updLocal)}},
			changes: Changes{Added: 4, Removed: 6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			updated, synced := newLoneNode(t, "updated"), newLoneNode(t, "synced")
			before := updDesired(tc.extra...)
			after := withUpdate(before, tc.u)
			updated.sync(before)
			synced.sync(after)

			ch, err := updated.update(testNetworkID, tc.u)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if ch != tc.changes {
				t.Errorf("Update changed %+v, want %+v", ch, tc.changes)
			}
			checkSameAsSync(t, updated, synced, after)
			if ch := updated.sync(after); ch.Changed() {
				t.Errorf("Sync after the Update changed %+v, want nothing", ch)
			}
		})
	}
}

// A run of random Updates, each compared with a Sync of the same view on a twin node: the
// kernels match after every step, and Update counts what Sync counts.
func TestUpdateSequenceMatchesSync(t *testing.T) {
	updated, synced := newLoneNode(t, "updated"), newLoneNode(t, "synced")
	vteps := []netip.Addr{updLocal, updP1, updP2, updP3}
	rng := rand.New(rand.NewPCG(7, 11))
	// Each IP has two MACs of its own, so that no two IPs share one.
	randomEndpoint := func() Endpoint {
		ep := updEndpoint(10+rng.IntN(24), vteps[rng.IntN(len(vteps))])
		if rng.IntN(4) == 0 {
			ep.MAC[1] = 0x43
		}
		return ep
	}
	d := updDesired()
	updated.sync(d)
	synced.sync(d)
	for step := range 80 {
		var u EndpointUpdate
		seen := map[netip.Addr]bool{}
		for range 1 + rng.IntN(3) {
			ep := randomEndpoint()
			switch {
			case seen[ep.IP]:
			case rng.IntN(3) == 0:
				u.Removed = append(u.Removed, ep.IP)
			default:
				u.Set = append(u.Set, ep)
			}
			seen[ep.IP] = true
		}
		d = withUpdate(d, u)
		got, err := updated.update(testNetworkID, u)
		if err != nil {
			t.Fatalf("step %d: Update %+v: %v", step, u, err)
		}
		if want := synced.sync(d); got != want {
			t.Errorf("step %d: Update %+v changed %+v, Sync %+v", step, u, got, want)
		}
		checkSameAsSync(t, updated, synced, d)
		if t.Failed() {
			t.Fatalf("stopped at step %d", step)
		}
	}
}

func TestUpdateNeedsSuccessfulSync(t *testing.T) {
	node := newLoneNode(t, "node")
	d := updDesired()
	u := EndpointUpdate{Set: []Endpoint{updEndpoint(14, updP1)}}
	wantNotSynced := func(when string) {
		t.Helper()
		ch, err := node.update(testNetworkID, u)
		if !errors.Is(err, ErrNotSynced) {
			t.Errorf("Update %s: %v, want ErrNotSynced", when, err)
		}
		if ch.Changed() {
			t.Errorf("Update %s changed %+v", when, ch)
		}
	}
	wantUpdated := func(when string, want Changes) {
		t.Helper()
		if ch, err := node.update(testNetworkID, u); err != nil || ch != want {
			t.Errorf("Update %s: changed %+v, %v; want %+v", when, ch, err, want)
		}
	}

	wantNotSynced("before any Sync")
	if node.hasDevice(t, DeviceName(testNetworkID)) {
		t.Errorf("Update before any Sync made device %s", DeviceName(testNetworkID))
	}

	node.sync(d)
	wantUpdated("after Sync", Changes{Added: 3})

	// A refused Sync changes nothing, what the Manager remembers included.
	bad := d
	bad.Network.VNI = 0
	inNetns(t, node.ns, func() error {
		_, err := node.mgr.Sync(bad)
		checkFieldError(t, err, "Network.VNI")
		return nil
	})
	wantUpdated("after a refused Sync", Changes{})

	// A network whose device name is the same is another network.
	other := d
	other.Network.ID = testNetworkID[:10] + "-other"
	node.sync(other)
	wantNotSynced("of a network after a Sync of another one with the same device")

	node.sync(d)
	inNetns(t, node.ns, func() error { return node.mgr.Remove(testNetworkID) })
	wantNotSynced("after Remove")

	node.sync(d)
	noBridge := d
	noBridge.Network.Bridge = "shlnotyet"
	inNetns(t, node.ns, func() error {
		if _, err := node.mgr.Sync(noBridge); !errors.Is(err, ErrNoBridge) {
			return fmt.Errorf("Sync without the bridge: %v, want ErrNoBridge", err)
		}
		return nil
	})
	wantNotSynced("after a failed Sync")

	// The device goes behind the Manager's back: the kernel refuses the next Update's entries,
	// and the Manager forgets the network.
	node.sync(d)
	inNetns(t, node.ns, func() error {
		link, err := netlink.LinkByName(DeviceName(testNetworkID))
		if err != nil {
			return err
		}
		return netlink.LinkDel(link)
	})
	u.Set[0].VTEP = updP2
	if _, err := node.update(testNetworkID, u); err == nil || errors.Is(err, ErrNotSynced) || errors.Is(err, ErrInvalid) {
		t.Errorf("Update without the device: %v, want the kernel's error", err)
	}
	wantNotSynced("after a failed Update")

	node.sync(withUpdate(d, u))
	u.Set[0].VTEP = updP3
	wantUpdated("after Sync again", Changes{Added: 1, Replaced: 1})
}

func TestUpdateRefusesBadInput(t *testing.T) {
	node := newLoneNode(t, "node")
	d := updDesired()
	node.sync(d)
	valid := updEndpoint(14, updP3)
	cases := []struct {
		name      string
		networkID string // testNetworkID when empty
		u         EndpointUpdate
		field     string
	}{
		{"network ID with a slash", "ab/cd", EndpointUpdate{Set: []Endpoint{valid}}, "Network.ID"},
		{"no IP", "", EndpointUpdate{Set: []Endpoint{{MAC: valid.MAC, VTEP: updP1}}}, "Set[0].IP"},
		{"IPv6 IP", "", EndpointUpdate{Set: []Endpoint{{IP: netip.MustParseAddr("2001:db8::7"), MAC: valid.MAC, VTEP: updP1}}}, "Set[0].IP"},
		{"multicast MAC", "", EndpointUpdate{Set: []Endpoint{{IP: valid.IP, MAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, VTEP: updP1}}}, "Set[0].MAC"},
		{"loopback VTEP", "", EndpointUpdate{Set: []Endpoint{{IP: valid.IP, MAC: valid.MAC, VTEP: netip.MustParseAddr("127.0.0.1")}}}, "Set[0].VTEP"},
		{"5-byte MAC after a valid endpoint", "",
			EndpointUpdate{Set: []Endpoint{valid, {IP: taskIP(15), MAC: macOfIP(taskIP(15))[:5], VTEP: updP1}}}, "Set[1].MAC"},
		{"IP twice in Set", "", EndpointUpdate{Set: []Endpoint{valid, updEndpoint(14, updP1)}}, "Set[1].IP"},
		{"MAC twice in Set at two VTEPs", "",
			EndpointUpdate{Set: []Endpoint{valid, {IP: taskIP(15), MAC: valid.MAC, VTEP: updP1}}}, "Set[1].MAC"},
		{"MAC of an endpoint that stays, at another VTEP", "",
			EndpointUpdate{Set: []Endpoint{valid, {IP: taskIP(15), MAC: macOfIP(taskIP(11)), VTEP: updP2}}}, "Set[1].MAC"},
		{"MAC of a local endpoint, at a remote VTEP", "",
			EndpointUpdate{Set: []Endpoint{{IP: taskIP(15), MAC: macOfIP(taskIP(13)), VTEP: updP1}}}, "Set[0].MAC"},
		{"IPv6 removed", "", EndpointUpdate{Removed: []netip.Addr{netip.MustParseAddr("2001:db8::7")}, Set: []Endpoint{valid}}, "Removed[0]"},
		{"unspecified removed after a valid one", "",
			EndpointUpdate{Removed: []netip.Addr{taskIP(10), netip.IPv4Unspecified()}}, "Removed[1]"},
	}
	kernel := fmt.Sprintf("%+v", node.read())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.networkID
			if id == "" {
				id = testNetworkID
			}
			ch, err := node.update(id, tc.u)
			checkFieldError(t, err, tc.field)
			if ch.Changed() {
				t.Errorf("refused Update changed %+v", ch)
			}
			if got := fmt.Sprintf("%+v", node.read()); got != kernel {
				t.Errorf("refused Update changed the kernel:\n got  %s\n want %s", got, kernel)
			}
		})
	}
	// The refusals left the Manager's state as it was: a valid Update counts from it.
	u := EndpointUpdate{Removed: []netip.Addr{taskIP(11)}, Set: []Endpoint{valid}}
	if ch, err := node.update(testNetworkID, u); err != nil || ch != (Changes{Added: 4, Removed: 3}) {
		t.Errorf("valid Update after the refused ones: changed %+v, %v; want 4 added, 3 removed", ch, err)
	}
	node.checkEntries(t, withUpdate(d, u))
}

// A task rescheduled to another node keeps its IP; Updates alone, no Sync, let the others reach
// it there.
func TestUpdateFollowsMovedEndpoint(t *testing.T) {
	bed := newTestbed(t, 3)
	n0, n1, n2 := bed.nodes[0], bed.nodes[1], bed.nodes[2]
	a, b := n0.addTask(taskIP(20)), n1.addTask(taskIP(21))
	moving := n1.addTask(taskIP(22))
	bed.syncAll(bed.desired(a, b, moving))
	if err := a.ping(moving.ip); err != nil {
		t.Fatalf("before the move: %v", err)
	}

	moving.remove()
	moved := n2.addTask(moving.ip)
	u := EndpointUpdate{Set: []Endpoint{moved.endpoint()}}
	wantChanges := []Changes{
		{Replaced: 1}, // n0: the FDB entry now points at n2 (the bridge entry stays)
		{Added: 3},    // n1: the task was local, now remote
		{Removed: 3},  // n2: the task was remote, now local
	}
	for i, node := range bed.nodes {
		ch, err := node.update(testNetworkID, u)
		if err != nil {
			t.Fatalf("%s: Update: %v", node.name, err)
		}
		if ch != wantChanges[i] {
			t.Errorf("%s: Update after the move changed %+v, want %+v", node.name, ch, wantChanges[i])
		}
		node.checkEntries(t, bed.desired(a, b, moved))
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

// As TestSyncAfterMovedTaskTalked, through Update: the bridge entry of a task that moved here
// and talked is on the task's own port, so Update's delete of it on the device's port finds
// none and leaves the bridge forwarding to the task.
func TestUpdateAfterMovedTaskTalked(t *testing.T) {
	bed, a, moved, other := movedTaskThatTalked(t)
	n0 := bed.nodes[0]
	ch, err := n0.update(testNetworkID, EndpointUpdate{Set: []Endpoint{moved.endpoint(), other.endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Changes{Removed: 2}); ch != want {
		t.Errorf("Update after the move changed %+v, want %+v (FDB and neighbour entries; the bridge entry had moved to the task's port)", ch, want)
	}
	n0.checkEntries(t, bed.desired(a, moved, other))
	if err := a.tcpExchange(moved); err != nil {
		t.Errorf("a to the moved task on the same node: %v", err)
	}
}
