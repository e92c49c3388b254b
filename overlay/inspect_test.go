package overlay

// This file tests Inspect after hand edits of a node's entries, and the hand edits themselves,
// which go straight through netlink as an operator's `bridge fdb` and `ip neigh` would.

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// handOp is one hand edit of the device's entries.
type handOp struct {
	what string
	do   func(linkIndex int) error
}

// handEdit applies ops to node's device for the test network.
func handEdit(t *testing.T, node *testNode, ops ...handOp) {
	t.Helper()
	inNetns(t, node.ns, func() error {
		link, err := netlink.LinkByName(DeviceName(testNetworkID))
		if err != nil {
			return err
		}
		for _, op := range ops {
			if err := op.do(link.Attrs().Index); err != nil {
				return fmt.Errorf("hand edit %q: %w", op.what, err)
			}
		}
		return nil
	})
}

func fdbOp(what string, mac net.HardwareAddr, dst netip.Addr, fn func(*netlink.Neigh) error) handOp {
	return handOp{what, func(idx int) error {
		return fn(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			State: netlink.NUD_PERMANENT, IP: dst.AsSlice(), HardwareAddr: mac})
	}}
}

// bridgeOp edits the bridge's forwarding entry of mac on the device's port, as `bridge fdb ...
// dev DEVICE master` would.
func bridgeOp(what string, mac net.HardwareAddr, state int, fn func(*netlink.Neigh) error) handOp {
	return handOp{what, func(idx int) error {
		return fn(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER,
			State: state, HardwareAddr: mac})
	}}
}

func neighOp(what string, ip netip.Addr, mac net.HardwareAddr, fn func(*netlink.Neigh) error) handOp {
	return handOp{what, func(idx int) error {
		return fn(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: ip.AsSlice(), HardwareAddr: mac})
	}}
}

var (
	strayIP  = taskIP(99)
	strayMAC = macOfIP(strayIP)
	floodMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	// strayEdits add three entries that no Desired of the tests has.
	strayEdits = []handOp{
		fdbOp("add an FDB entry of no endpoint", strayMAC, unusedVTEP, netlink.NeighSet),
		fdbOp("replicate broadcasts to a node that is no peer", floodMAC, unusedVTEP, netlink.NeighAppend),
		neighOp("add a neighbour entry of no endpoint", strayIP, strayMAC, netlink.NeighSet),
	}
)

func TestInspectReportsHandEdits(t *testing.T) {
	bed := newTestbed(t, 2)
	n0, n1 := bed.nodes[0], bed.nodes[1]
	a, b := n0.addTask(taskIP(50)), n1.addTask(taskIP(51))
	want := bed.desired(a, b)
	bed.syncAll(want)
	if r := n0.inspect(want); !r.Clean() {
		t.Fatalf("Inspect right after Sync is not clean: %+v", r)
	}

	handEdit(t, n0, append([]handOp{
		fdbOp("point b's MAC at another VTEP", b.mac, unusedVTEP, netlink.NeighSet),
		neighOp("delete b's neighbour entry", b.ip, b.mac, netlink.NeighDel),
	}, strayEdits...)...)

	r := n0.inspect(want)
	if r.Clean() {
		t.Errorf("Inspect after hand edits is clean")
	}
	wantFDB := []FDBEntry{
		{MAC: floodMAC, Desired: n1.vtep, Programmed: n1.vtep, Status: StatusOK},
		{MAC: floodMAC, Programmed: unusedVTEP, Status: StatusExtra},
		{MAC: b.mac, Desired: n1.vtep, Programmed: unusedVTEP, Status: StatusWrong, Detail: "at VTEP 198.18.0.99, want 198.18.0.2"},
		{MAC: strayMAC, Programmed: unusedVTEP, Status: StatusExtra},
	}
	wantNeigh := []NeighEntry{
		{IP: b.ip, Desired: b.mac, Status: StatusMissing},
		{IP: strayIP, Programmed: strayMAC, Status: StatusExtra},
	}
	if got, want := fmt.Sprint(r.FDB), fmt.Sprint(wantFDB); got != want {
		t.Errorf("Inspect FDB:\n got  %s\n want %s", got, want)
	}
	if got, want := fmt.Sprint(r.Neighbours), fmt.Sprint(wantNeigh); got != want {
		t.Errorf("Inspect neighbours:\n got  %s\n want %s", got, want)
	}
	if len(r.Device.Problems) > 0 {
		t.Errorf("Inspect reports device problems after entry edits: %q", r.Device.Problems)
	}

	if got, want := n0.sync(want), (Changes{Added: 1, Replaced: 1, Removed: 3}); got != want {
		t.Errorf("Sync after the hand edits changed %+v, want %+v", got, want)
	}
	if r := n0.inspect(want); !r.Clean() {
		t.Errorf("Inspect after the repairing Sync is not clean: %+v", r)
	}
	n0.checkEntries(t, want)
}

func TestInspectReportsDevice(t *testing.T) {
	bed := newTestbed(t, 2)
	n0 := bed.nodes[0]
	a := bed.nodes[1].addTask(taskIP(60))
	want := bed.desired(a)

	r := n0.inspect(want)
	if r.Device.Exists || r.Clean() {
		t.Errorf("Inspect before any Sync: device exists %t, clean %t", r.Device.Exists, r.Clean())
	}
	for _, e := range append(statuses(r.FDB), neighStatuses(r.Neighbours)...) {
		if e != StatusMissing {
			t.Errorf("Inspect before any Sync: an entry is %s, want missing", e)
		}
	}
	if len(r.FDB) != 2 || len(r.Neighbours) != 1 {
		t.Errorf("Inspect before any Sync: %d FDB and %d neighbour entries, want 2 and 1", len(r.FDB), len(r.Neighbours))
	}

	n0.sync(want)
	inNetns(t, n0.ns, func() error {
		link, err := netlink.LinkByName(DeviceName(testNetworkID))
		if err != nil {
			return err
		}
		return netlink.LinkSetMTU(link, 1400)
	})
	r = n0.inspect(want)
	wantDev := DeviceReport{Name: DeviceName(testNetworkID), Exists: true, VNI: testVNI, Local: n0.vtep, Port: DefaultPort,
		MTU: 1400, Master: testBridge, Up: true, Proxy: true, Problems: []string{"MTU 1400, want 1450"}}
	if got, want := fmt.Sprint(r.Device), fmt.Sprint(wantDev); got != want {
		t.Errorf("Inspect device:\n got  %s\n want %s", got, want)
	}
	if r.Clean() {
		t.Errorf("Inspect with a wrong MTU is clean")
	}
}

func statuses(es []FDBEntry) []Status {
	var s []Status
	for _, e := range es {
		s = append(s, e.Status)
	}
	return s
}

func neighStatuses(es []NeighEntry) []Status {
	var s []Status
	for _, e := range es {
		s = append(s, e.Status)
	}
	return s
}

// localMAC is a MAC no Desired of the tests has, for a hand-made local bridge entry.
var localMAC = macOfIP(taskIP(98))

func TestInspectReportsBridgeHandEdits(t *testing.T) {
	bed := newTestbed(t, 2)
	n0, n1 := bed.nodes[0], bed.nodes[1]
	a, b, c := n0.addTask(taskIP(52)), n1.addTask(taskIP(53)), n1.addTask(taskIP(54))
	want := bed.desired(a, b, c)
	bed.syncAll(want)

	handEdit(t, n0,
		bridgeOp("delete b's bridge entry", b.mac, 0, netlink.NeighDel),
		bridgeOp("make c's bridge entry learnt", c.mac, netlink.NUD_REACHABLE, netlink.NeighSet),
		bridgeOp("add a bridge entry of no endpoint", strayMAC, netlink.NUD_NOARP, netlink.NeighSet),
		bridgeOp("add a bridge entry for the local task", a.mac, netlink.NUD_NOARP, netlink.NeighSet),
		// `bridge fdb add MAC dev DEVICE master` makes a local entry: frames to MAC go to the node.
		bridgeOp("add a local bridge entry of no endpoint", localMAC, netlink.NUD_PERMANENT, netlink.NeighSet),
	)
	r := n0.inspect(want)
	if r.Clean() {
		t.Errorf("Inspect after hand edits of bridge entries is clean")
	}
	wantBridge := []BridgeEntry{
		{MAC: b.mac, Desired: true, Status: StatusMissing},
		{MAC: c.mac, Desired: true, Programmed: true, Kind: BridgeLearnt, Status: StatusWrong, Detail: "learnt, not static"},
		{MAC: a.mac, Programmed: true, Kind: BridgeStatic, Status: StatusExtra},
		{MAC: strayMAC, Programmed: true, Kind: BridgeStatic, Status: StatusExtra},
		{MAC: localMAC, Programmed: true, Kind: BridgeLocal, Status: StatusExtra},
	}
	slices.SortFunc(wantBridge, func(x, y BridgeEntry) int { return slices.Compare(x.MAC, y.MAC) })
	if got, want := fmt.Sprint(r.Bridge), fmt.Sprint(wantBridge); got != want {
		t.Errorf("Inspect bridge entries:\n got  %s\n want %s", got, want)
	}
	if got, want := n0.sync(want), (Changes{Added: 1, Replaced: 1, Removed: 3}); got != want {
		t.Errorf("Sync after the hand edits changed %+v, want %+v", got, want)
	}
	if r := n0.inspect(want); !r.Clean() {
		t.Errorf("Inspect after the repairing Sync is not clean: %+v", r)
	}
	n0.checkEntries(t, want)
	// A wanted MAC with a local entry is wrong too; Sync makes it static.
	handEdit(t, n0, bridgeOp("make b's bridge entry local", b.mac, netlink.NUD_PERMANENT, netlink.NeighSet))
	if r := n0.inspect(want); fmt.Sprint(r.Bridge[0]) != fmt.Sprint(BridgeEntry{MAC: b.mac, Desired: true, Programmed: true, Kind: BridgeLocal, Status: StatusWrong, Detail: "local, not static"}) {
		t.Errorf("Inspect after b's entry was made local: %+v", r.Bridge)
	}
	if got, want := n0.sync(want), (Changes{Replaced: 1}); got != want {
		t.Errorf("Sync after b's entry was made local changed %+v, want %+v", got, want)
	}
	n0.checkEntries(t, want)
	if err := a.tcpExchange(b); err != nil {
		t.Errorf("after the repairing Sync: %v", err)
	}
}
