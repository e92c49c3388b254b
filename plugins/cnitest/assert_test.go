package cnitest

import (
	"net"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// defaultMTU is shoal-bridge's MTU when the configuration sets none.
const defaultMTU = 1450

// attachmentWant is what an attachment should look like.
type attachmentWant struct {
	ifName string
	addr   string // with prefix length
	mac    string
	mtu    int
}

// checkResult checks ADD's result and returns the host veth's name.
func checkResult(t *testing.T, n *network, sb *sandbox, res *current.Result, want attachmentWant) string {
	t.Helper()
	if len(res.Interfaces) != 3 {
		t.Fatalf("result has %d interfaces, want 3 (bridge, host veth, container): %+v", len(res.Interfaces), res.Interfaces)
	}
	br, host, cont := res.Interfaces[0], res.Interfaces[1], res.Interfaces[2]
	if br.Name != n.bridge || br.Sandbox != "" || br.Mac == "" {
		t.Errorf("result's bridge interface = %+v, want %s in the host namespace with its MAC", br, n.bridge)
	}
	if !strings.HasPrefix(host.Name, "shv") || len(host.Name) != 13 || host.Sandbox != "" {
		t.Errorf("result's host interface = %+v, want shv and 10 hex digits in the host namespace", host)
	}
	if cont.Name != want.ifName || cont.Sandbox != sb.path || cont.Mac != want.mac {
		t.Errorf("result's container interface = %+v, want %s with MAC %s in sandbox %s", cont, want.ifName, want.mac, sb.path)
	}
	if len(res.IPs) != 1 {
		t.Fatalf("result has %d addresses, want 1: %+v", len(res.IPs), res.IPs)
	}
	ip := res.IPs[0]
	if ip.Address.String() != want.addr || ip.Gateway.String() != n.gateway.String() || ip.Interface == nil || *ip.Interface != 2 {
		t.Errorf("result's address = %s gateway %s interface %v, want %s gateway %s interface 2", ip.Address.String(), ip.Gateway, ip.Interface, want.addr, n.gateway)
	}
	if len(res.Routes) != 1 || res.Routes[0].Dst.String() != "0.0.0.0/0" || res.Routes[0].GW.String() != n.gateway.String() {
		t.Errorf("result's routes = %v, want 0.0.0.0/0 via %s", res.Routes, n.gateway)
	}
	if len(res.DNS.Nameservers)+len(res.DNS.Search)+len(res.DNS.Options) != 0 || res.DNS.Domain != "" {
		t.Errorf("result's DNS = %+v, want it empty", res.DNS)
	}
	return host.Name
}

// checkAttached checks the kernel's state after ADD: inside the namespace the
// interface with its MAC, address, MTU and default route via the gateway; on
// the host the bridge with the gateway address and the host veth enslaved to
// it with hairpin on.
func checkAttached(t *testing.T, n *network, sb *sandbox, hostVeth string, want attachmentWant) {
	t.Helper()
	cont := sb.link(t, want.ifName)
	if got := cont.Attrs().HardwareAddr.String(); got != want.mac {
		t.Errorf("%s MAC = %s, want %s", want.ifName, got, want.mac)
	}
	if got := cont.Attrs().MTU; got != want.mtu {
		t.Errorf("%s MTU = %d, want %d", want.ifName, got, want.mtu)
	}
	if cont.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s is down", want.ifName)
	}
	sb.do(t, func() error {
		if !hasAddr(t, cont, want.addr) {
			t.Errorf("%s lacks address %s", want.ifName, want.addr)
		}
		if !hasDefaultRoute(t, cont, n.gateway.String()) {
			t.Errorf("%s lacks the default route via %s", want.ifName, n.gateway)
		}
		return nil
	})

	br := hostLink(t, n.bridge)
	if _, ok := br.(*netlink.Bridge); !ok {
		t.Fatalf("%s is a %s, want a bridge", n.bridge, br.Type())
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("bridge %s is down", n.bridge)
	}
	if br.Attrs().MTU != want.mtu {
		t.Errorf("bridge %s MTU = %d, want %d", n.bridge, br.Attrs().MTU, want.mtu)
	}
	if !hasAddr(t, br, n.gatewayCIDR()) {
		t.Errorf("bridge %s lacks the gateway address %s", n.bridge, n.gatewayCIDR())
	}
	veth := hostLink(t, hostVeth)
	if veth.Attrs().MasterIndex != br.Attrs().Index {
		t.Errorf("host veth %s is not enslaved to %s", hostVeth, n.bridge)
	}
	if veth.Attrs().MTU != want.mtu {
		t.Errorf("host veth %s MTU = %d, want %d", hostVeth, veth.Attrs().MTU, want.mtu)
	}
	info, err := netlinksafe.LinkGetProtinfo(veth)
	if err != nil {
		t.Fatalf("bridge port info of %s: %v", hostVeth, err)
	}
	if !info.Hairpin {
		t.Errorf("host veth %s has hairpin off", hostVeth)
	}
	if !hasStaticBridgeEntry(t, veth, want.mac) {
		t.Errorf("bridge %s has no static entry of the container's MAC %s on port %s", n.bridge, want.mac, hostVeth)
	}
	if got := bridgeRules(t, shoalChains[0], n.bridge); len(got) != 4 {
		t.Errorf("filter SHOAL-FORWARD has %d rules of %s, want 4: %q", len(got), n.bridge, got)
	}
}

// hasStaticBridgeEntry reports whether the bridge holds a static forwarding
// entry of mac on port.
func hasStaticBridgeEntry(t *testing.T, port netlink.Link, mac string) bool {
	t.Helper()
	entries, err := netlink.NeighList(port.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Errorf("bridge entries of %s: %v", port.Attrs().Name, err)
		return false
	}
	for _, e := range entries {
		if e.Flags&netlink.NTF_SELF == 0 && e.HardwareAddr.String() == mac && e.State&netlink.NUD_NOARP != 0 {
			return true
		}
	}
	return false
}

// hasAddr reports whether link holds cidr; call it in link's namespace. It
// may run off the test's goroutine, so it reports errors without stopping.
func hasAddr(t *testing.T, link netlink.Link, cidr string) bool {
	t.Helper()
	addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Errorf("addresses of %s: %v", link.Attrs().Name, err)
		return false
	}
	for _, a := range addrs {
		if a.IPNet.String() == cidr {
			return true
		}
	}
	return false
}

// hasDefaultRoute reports whether link has the IPv4 default route via gw;
// call it in link's namespace. Like hasAddr, it does not stop the test.
func hasDefaultRoute(t *testing.T, link netlink.Link, gw string) bool {
	t.Helper()
	routes, err := netlinksafe.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Errorf("routes of %s: %v", link.Attrs().Name, err)
		return false
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == gw {
			return true
		}
	}
	return false
}

// shoalVethsOn lists the host veths shoal-bridge made on bridge; none when
// the bridge does not exist.
func shoalVethsOn(t *testing.T, bridge string) []string {
	t.Helper()
	br, err := netlinksafe.LinkByName(bridge)
	if err != nil {
		return nil
	}
	links, err := netlinksafe.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index && strings.HasPrefix(l.Attrs().Name, "shv") {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}
