package cnitest

import (
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
)

// tamper breaks one thing ADD set up, for CHECK to find, and repairs it.
type tamper struct {
	name   string
	apply  func(t *testing.T, n *network, sb *sandbox, hostVeth string)
	repair func(t *testing.T, n *network, sb *sandbox, hostVeth string)
	// want is part of CHECK's error naming what differs.
	want func(n *network) string
}

var tampers = []tamper{
	{
		name: "default route deleted",
		apply: func(t *testing.T, n *network, sb *sandbox, _ string) {
			route := defaultRoute(t, sb, n)
			sb.do(t, func() error { return netlink.RouteDel(route) })
		},
		repair: func(t *testing.T, n *network, sb *sandbox, _ string) {
			route := defaultRoute(t, sb, n)
			sb.do(t, func() error { return netlink.RouteAdd(route) })
		},
		want: func(n *network) string {
			return `container interface "eth0" lacks route 0.0.0.0/0 via ` + n.gateway.String()
		},
	},
	{
		name: "container MTU changed",
		apply: func(t *testing.T, _ *network, sb *sandbox, _ string) {
			link := sb.link(t, "eth0")
			sb.do(t, func() error { return netlink.LinkSetMTU(link, 1400) })
		},
		repair: func(t *testing.T, _ *network, sb *sandbox, _ string) {
			link := sb.link(t, "eth0")
			sb.do(t, func() error { return netlink.LinkSetMTU(link, defaultMTU) })
		},
		want: func(*network) string { return `container interface "eth0" has MTU 1400, want 1450` },
	},
	{
		name: "hairpin off",
		apply: func(t *testing.T, _ *network, _ *sandbox, hostVeth string) {
			if err := netlink.LinkSetHairpin(hostLink(t, hostVeth), false); err != nil {
				t.Fatal(err)
			}
		},
		repair: func(t *testing.T, _ *network, _ *sandbox, hostVeth string) {
			if err := netlink.LinkSetHairpin(hostLink(t, hostVeth), true); err != nil {
				t.Fatal(err)
			}
		},
		want: func(*network) string { return "has hairpin off, want on" },
	},
	{
		name: "gateway address removed from the bridge",
		apply: func(t *testing.T, n *network, _ *sandbox, _ string) {
			if err := netlink.AddrDel(hostLink(t, n.bridge), gatewayAddr(t, n)); err != nil {
				t.Fatal(err)
			}
		},
		repair: func(t *testing.T, n *network, _ *sandbox, _ string) {
			if err := netlink.AddrAdd(hostLink(t, n.bridge), gatewayAddr(t, n)); err != nil {
				t.Fatal(err)
			}
		},
		want: func(n *network) string { return `bridge "` + n.bridge + `" lacks gateway address` },
	},
}

func defaultRoute(t *testing.T, sb *sandbox, n *network) *netlink.Route {
	t.Helper()
	link := sb.link(t, "eth0")
	return &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(n.gateway.AsSlice())}
}

func gatewayAddr(t *testing.T, n *network) *netlink.Addr {
	t.Helper()
	addr, err := netlink.ParseAddr(n.gatewayCIDR())
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestBridgeLifecycle runs ADD, CHECK, CHECK after each tamper, DEL, DEL
// again and DEL without the namespace for each supported spec version, and
// STATUS and GC where the version has them.
func TestBridgeLifecycle(t *testing.T) {
	requireHost(t)
	for _, version := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		t.Run(version, func(t *testing.T) {
			n := newNetwork(t, networkOptions{version: version})
			sb := newSandbox(t)
			want := attachmentWant{ifName: "eth0", addr: n.addr(5), mac: "02:00:5e:00:53:05", mtu: defaultMTU}
			capArgs := map[string]any{"ips": []string{want.addr}, "mac": want.mac}
			hasStatusAndGC := version == "1.1.0"

			if hasStatusAndGC {
				n.mustCNITool(t, "status", sb, "eth0", nil)
			}
			res := n.add(t, sb, "eth0", capArgs)
			hostVeth := checkResult(t, n, sb, res, want)
			checkAttached(t, n, sb, hostVeth, want)

			n.mustCNITool(t, "check", sb, "eth0", capArgs)
			for _, tp := range tampers {
				tp.apply(t, n, sb, hostVeth)
				_, err := n.cnitool("check", sb, "eth0", capArgs)
				if err == nil || !strings.Contains(err.Error(), tp.want(n)) {
					t.Errorf("CHECK after %s: error = %v, want one containing %q", tp.name, err, tp.want(n))
				}
				tp.repair(t, n, sb, hostVeth)
				if _, err := n.cnitool("check", sb, "eth0", capArgs); err != nil {
					t.Errorf("CHECK after repairing %s: %v", tp.name, err)
				}
			}

			n.mustCNITool(t, "del", sb, "eth0", capArgs)
			if hostHasLink(hostVeth) {
				t.Errorf("host veth %s still exists after DEL", hostVeth)
			}
			if sb.hasLink(t, "eth0") {
				t.Error("eth0 still exists in the namespace after DEL")
			}
			n.mustCNITool(t, "del", sb, "eth0", capArgs)
			sb.remove(t)
			n.mustCNITool(t, "del", sb, "eth0", capArgs)
			if !hostHasLink(n.bridge) {
				t.Errorf("DEL removed bridge %s; it must stay for the network's other attachments", n.bridge)
			}
			if hasStatusAndGC {
				n.mustCNITool(t, "gc", nil, "eth0", nil)
			}
		})
	}
}

// TestAddTwiceSameIfName checks that a second ADD for an interface name the
// namespace already has fails naming it, and leaves the first attachment
// working.
func TestAddTwiceSameIfName(t *testing.T) {
	requireHost(t)
	n := newNetwork(t, networkOptions{})
	sb := newSandbox(t)
	capArgs := map[string]any{"ips": []string{n.addr(7)}}
	n.add(t, sb, "eth0", capArgs)

	_, err := n.cnitool("add", sb, "eth0", map[string]any{"ips": []string{n.addr(8)}})
	if err == nil || !strings.Contains(err.Error(), `interface "eth0" already exists in netns `+sb.path) {
		t.Fatalf("second ADD: error = %v, want one saying eth0 already exists", err)
	}
	// The code, which cnitool does not print: CNI_IFNAME is unusable here.
	add := pluginCall{
		command:     "ADD",
		containerID: "add-twice-" + randomHex(t, 4),
		netns:       sb.path,
		ifName:      "eth0",
		conf:        n.pluginConf(t, map[string]any{"runtimeConfig": map[string]any{"ips": []string{n.addr(8)}}}),
	}
	del := add
	del.command = "DEL"
	t.Cleanup(func() {
		if err := del.runErr("shoal-bridge"); err != nil {
			t.Errorf("clean-up DEL: %v", err)
		}
	})
	if code := errorCode(t, add.runErr("shoal-bridge")); code != types.ErrInvalidEnvironmentVariables {
		t.Errorf("second ADD: code %d, want %d (invalid CNI_IFNAME)", code, types.ErrInvalidEnvironmentVariables)
	}
	n.mustCNITool(t, "check", sb, "eth0", capArgs)
}

// TestDelWithoutNetns runs DEL the way a runtime does when the sandbox's
// namespace was never created or is unknown: without CNI_NETNS. The host
// veth, found by its derived name, goes, and the container end with it.
func TestDelWithoutNetns(t *testing.T) {
	requireHost(t)
	n := newNetwork(t, networkOptions{})
	sb := newSandbox(t)
	// cnitool always passes a namespace, so this test runs the plugin itself.
	add := pluginCall{
		command:     "ADD",
		containerID: "del-no-netns-" + randomHex(t, 4),
		netns:       sb.path,
		ifName:      "eth0",
		conf:        n.pluginConf(t, map[string]any{"runtimeConfig": map[string]any{"ips": []string{n.addr(9)}}}),
	}
	del := add
	del.command, del.netns = "DEL", ""
	t.Cleanup(func() {
		if _, err := del.run("shoal-bridge"); err != nil {
			t.Errorf("clean-up DEL: %v", err)
		}
	})
	res := add.mustResult(t, "shoal-bridge")
	hostVeth := res.Interfaces[1].Name

	if _, err := del.run("shoal-bridge"); err != nil {
		t.Fatalf("DEL without CNI_NETNS: %v", err)
	}
	if hostHasLink(hostVeth) {
		t.Errorf("host veth %s still exists after DEL without CNI_NETNS", hostVeth)
	}
	if sb.hasLink(t, "eth0") {
		t.Error("eth0 still exists in the namespace after DEL without CNI_NETNS")
	}
	if _, err := del.run("shoal-bridge"); err != nil {
		t.Fatalf("second DEL without CNI_NETNS: %v", err)
	}
}

// TestStatusWithoutIptables checks that STATUS reports the plugin as not
// available (code 50) on a node without the iptables binary.
func TestStatusWithoutIptables(t *testing.T) {
	requireHost(t)
	n := newNetwork(t, networkOptions{})
	noIptables := "PATH=" + t.TempDir()
	_, err := n.cnitool("status", nil, "eth0", nil, noIptables)
	if err == nil || !strings.Contains(err.Error(), "plugin not available") || !strings.Contains(err.Error(), "iptables") {
		t.Fatalf("STATUS without iptables: error = %v, want plugin not available naming iptables", err)
	}
	status := pluginCall{command: "STATUS", conf: n.pluginConf(t, nil), env: []string{noIptables}}
	if code := errorCode(t, status.runErr("shoal-bridge")); code != types.ErrPluginNotAvailable {
		t.Fatalf("STATUS without iptables: code %d, want %d", code, types.ErrPluginNotAvailable)
	}
}
