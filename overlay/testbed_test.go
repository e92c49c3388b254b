package overlay

// This file builds the test bed: an underlay bridge in its own namespace, "node" namespaces
// joined to it by veths, each with the network's bridge (as shoal-bridge makes it), and "task"
// namespaces hanging off a node's bridge. Every namespace is a fresh, unnamed one (ns.TempNetNS)
// that the test closes in t.Cleanup; the kernel then removes it with every link in it, so
// nothing is left behind on failure either and no name can clash with another test run.

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/shoal/shoal/internal/nstest"
	"github.com/vishvananda/netlink"
)

const (
	testNetworkID = "nw0123456789abcdef"
	testVNI       = 4242
	testMTU       = 1450 // the underlay's 1500 less the VXLAN overhead
)

var (
	testSubnet  = netip.MustParsePrefix("198.19.7.0/24") // the shoal network's subnet
	testGateway = netip.MustParseAddr("198.19.7.1")      // on every node's bridge
	underlayNet = netip.MustParsePrefix("198.18.0.0/24") // the nodes' underlay
	testBridge  = "shl" + testNetworkID[:10]             // as shoal-bridge names it
	testNetwork = Network{ID: testNetworkID, VNI: testVNI, Bridge: testBridge, MTU: testMTU}
	unusedVTEP  = netip.MustParseAddr("198.18.0.99") // in the underlay, no node has it
)

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates network namespaces, veths, bridges and VXLAN devices")
	}
}

// newNetns returns a fresh network namespace, closed (and so removed) when the test ends.
func newNetns(tb testing.TB) ns.NetNS { return nstest.New(tb) }

// inNetns runs fn on a thread locked to n; fn returns an error to fail the test.
func inNetns(tb testing.TB, n ns.NetNS, fn func() error) { nstest.Do(tb, n, fn) }

// testbed is an underlay with nodes on it.
type testbed struct {
	tb       testing.TB
	underlay ns.NetNS
	nodes    []*testNode
	veths    int // veths made so far, for unique names
}

// testNode is one node: a namespace on the underlay with the network's bridge and a Manager.
type testNode struct {
	bed  *testbed
	name string
	ns   ns.NetNS
	vtep netip.Addr
	mgr  *Manager
}

// testTask is one task: a namespace with a veth into its node's bridge.
type testTask struct {
	node     *testNode
	ns       ns.NetNS
	ip       netip.Addr
	mac      net.HardwareAddr
	hostVeth string
}

// newTestbed makes an underlay and n nodes on it, node i at 198.18.0.(i+1), each with the
// network's bridge.
func newTestbed(tb testing.TB, n int) *testbed {
	tb.Helper()
	requireRoot(tb)
	bed := &testbed{tb: tb, underlay: newNetns(tb)}
	inNetns(tb, bed.underlay, func() error {
		if err := addBridge("underlay", 1500, netip.Prefix{}); err != nil {
			return err
		}
		return setUp("lo")
	})
	for i := range n {
		bed.addNode(fmt.Sprintf("node%d", i))
	}
	return bed
}

// addNode adds a node; the i-th node's underlay address is 198.18.0.(i+1).
func (bed *testbed) addNode(name string) *testNode {
	tb := bed.tb
	tb.Helper()
	vtep := underlayNet.Addr()
	for range len(bed.nodes) + 1 {
		vtep = vtep.Next()
	}
	node := &testNode{bed: bed, name: name, ns: newNetns(tb), vtep: vtep}
	inNetns(tb, bed.underlay, func() error {
		return addVeth("ul-"+name, "eth0", node.ns, 1500, "underlay")
	})
	inNetns(tb, node.ns, func() error {
		if err := setUp("lo"); err != nil {
			return err
		}
		if err := addAddr("eth0", netip.PrefixFrom(vtep, underlayNet.Bits())); err != nil {
			return err
		}
		if err := setUp("eth0"); err != nil {
			return err
		}
		return addBridge(testBridge, testMTU, netip.PrefixFrom(testGateway, testSubnet.Bits()))
	})
	mgr, err := New(Config{LocalVTEP: vtep, Log: testLogger(tb)})
	if err != nil {
		tb.Fatalf("New for %s: %v", name, err)
	}
	node.mgr = mgr
	bed.nodes = append(bed.nodes, node)
	return node
}

// addTask starts a task on node: a namespace with eth0 on the node's bridge, ip in the network's
// subnet and the MAC shoal derives from it.
func (node *testNode) addTask(ip netip.Addr) *testTask {
	tb := node.bed.tb
	tb.Helper()
	node.bed.veths++
	task := &testTask{
		node:     node,
		ns:       newNetns(tb),
		ip:       ip,
		mac:      macOfIP(ip),
		hostVeth: fmt.Sprintf("tv%d", node.bed.veths),
	}
	inNetns(tb, node.ns, func() error {
		return addVeth(task.hostVeth, "eth0", task.ns, testMTU, testBridge)
	})
	inNetns(tb, task.ns, func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetHardwareAddr(link, task.mac); err != nil {
			return fmt.Errorf("set MAC %s: %w", task.mac, err)
		}
		if err := addAddr("eth0", netip.PrefixFrom(ip, testSubnet.Bits())); err != nil {
			return err
		}
		// No IPv6 on the task: a task then sends nothing until a test makes it, so whether a
		// node's bridge has learnt it on its local port is up to the test, not to the timing
		// of IPv6 autoconfiguration.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", []byte("1"), 0o644); err != nil {
			return fmt.Errorf("turn IPv6 off on eth0: %w", err)
		}
		if err := setUp("eth0"); err != nil {
			return err
		}
		return setUp("lo")
	})
	return task
}

// remove stops the task: its veth goes from the node's bridge and its namespace is closed.
func (task *testTask) remove() {
	tb := task.node.bed.tb
	tb.Helper()
	inNetns(tb, task.node.ns, func() error {
		link, err := netlink.LinkByName(task.hostVeth)
		if err != nil {
			return err
		}
		return netlink.LinkDel(link)
	})
	task.ns.Close()
}

// endpoint is the task as the overlay sees it.
func (task *testTask) endpoint() Endpoint {
	return Endpoint{IP: task.ip, MAC: task.mac, VTEP: task.node.vtep}
}

// desired is the network's desired state with tasks as its endpoints and every node as a peer
// (each Manager skips its own VTEP).
func (bed *testbed) desired(tasks ...*testTask) Desired {
	d := Desired{Network: testNetwork}
	for _, task := range tasks {
		d.Endpoints = append(d.Endpoints, task.endpoint())
	}
	for _, node := range bed.nodes {
		d.Peers = append(d.Peers, node.vtep)
	}
	return d
}

// sync runs Sync on the node, failing the test on error.
func (node *testNode) sync(d Desired) Changes {
	tb := node.bed.tb
	tb.Helper()
	var ch Changes
	inNetns(tb, node.ns, func() error {
		var err error
		ch, err = node.mgr.Sync(d)
		if err != nil {
			return fmt.Errorf("Sync on %s: %w", node.name, err)
		}
		return nil
	})
	return ch
}

// syncAll runs Sync on every node and returns each node's changes.
func (bed *testbed) syncAll(d Desired) []Changes {
	bed.tb.Helper()
	var all []Changes
	for _, node := range bed.nodes {
		all = append(all, node.sync(d))
	}
	return all
}

// inspect runs Inspect on the node.
func (node *testNode) inspect(d Desired) Report {
	tb := node.bed.tb
	tb.Helper()
	var r Report
	inNetns(tb, node.ns, func() error {
		var err error
		r, err = node.mgr.Inspect(d)
		return err
	})
	return r
}

// macOfIP is shoal's MAC for a task address: 02:42 and the four bytes.
func macOfIP(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// taskIP is the n-th address of the test subnet.
func taskIP(n int) netip.Addr {
	b := testSubnet.Addr().As4()
	b[3] = byte(n)
	return netip.AddrFrom4(b)
}

// addBridge adds a bridge with a pinned MAC, the MTU and, if valid, an address, and sets it up.
func addBridge(name string, mtu int, addr netip.Prefix) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.MTU = mtu
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return fmt.Errorf("add bridge %s: %w", name, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	// Pinned as shoal-bridge does, so that ports joining do not change it.
	if err := netlink.LinkSetHardwareAddr(link, link.Attrs().HardwareAddr); err != nil {
		return fmt.Errorf("pin the MAC of bridge %s: %w", name, err)
	}
	if addr.IsValid() {
		if err := addAddr(name, addr); err != nil {
			return err
		}
	}
	return setUp(name)
}

// addVeth adds a veth pair from the current namespace: name here, enslaved to master and up;
// peer in peerNS, down.
func addVeth(name, peer string, peerNS ns.NetNS, mtu int, master string) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.MTU = mtu
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peer, PeerNamespace: netlink.NsFd(int(peerNS.Fd()))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", name, peer, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	br, err := netlink.LinkByName(master)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("enslave %s to %s: %w", name, master, err)
	}
	return setUp(name)
}

func addAddr(name string, p netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	ipNet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet}); err != nil {
		return fmt.Errorf("add address %s to %s: %w", p, name, err)
	}
	return nil
}

func setUp(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// testLogger logs into the test's log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}
