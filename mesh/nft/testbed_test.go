package nft

// This file builds the dataplane test bed, every part a fresh namespace closed in t.Cleanup:
//
//	outside (198.19.40.2) ── veth ── node (198.19.40.1 on "out";
//	                                      bridge "shltestnet01" 198.18.40.1/24 + VIPs as /32)
//	                                        ├── veth ── backend-0 198.18.40.2, TCP :80
//	                                        ├── veth ── backend-1 198.18.40.3, TCP :80
//	                                        ├── veth ── backend-2 198.18.40.4, TCP :80
//	                                        └── veth ── client    198.18.40.10
//
// as a shoal node has it: tasks on the network's bridge (hairpin on its ports), the VIPs on the
// bridge, forwarding and bridge-nf-call-iptables on. Each backend answers a connection with its name and the address
// it saw the connection come from.

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

const (
	bedBridge = "shltestnet01" // "shl" and 10 characters, as shoal-bridge names it
	bedPort   = 80             // the backends' port
)

var (
	bedGateway   = netip.MustParsePrefix("198.18.40.1/24")
	bedClient    = netip.MustParsePrefix("198.18.40.10/24")
	bedNodeOut   = netip.MustParsePrefix("198.19.40.1/24") // the node's address toward outside
	bedOutside   = netip.MustParsePrefix("198.19.40.2/24")
	bedVIP       = netip.MustParseAddr("198.18.40.100")
	bedEmptyVIP  = netip.MustParseAddr("198.18.40.101")
	bedBackendIP = []netip.Addr{
		netip.MustParseAddr("198.18.40.2"), netip.MustParseAddr("198.18.40.3"), netip.MustParseAddr("198.18.40.4"),
	}
)

type testbed struct {
	node, client, outside ns.NetNS
	backends              []ns.NetNS
}

// newTestbed builds the bed; it skips the test when the kernel cannot pass bridged traffic
// through netfilter (no br_netfilter).
func newTestbed(t *testing.T) *testbed {
	t.Helper()
	bed := &testbed{node: nodeNetns(t), client: newNetns(t), outside: newNetns(t)}
	bridgeNF := true
	inNetns(t, bed.node, func() error {
		_, err := os.Stat("/proc/sys/net/bridge")
		bridgeNF = err == nil
		return nil
	})
	if !bridgeNF {
		t.Skip("the node namespace has no /proc/sys/net/bridge (br_netfilter not loaded): bridged replies would bypass conntrack")
	}
	inNetns(t, bed.node, func() error {
		for path, value := range map[string]string{
			"/proc/sys/net/ipv4/ip_forward":                  "1",
			"/proc/sys/net/ipv4/conf/all/send_redirects":     "0",
			"/proc/sys/net/ipv4/conf/default/send_redirects": "0",
			"/proc/sys/net/bridge/bridge-nf-call-iptables":   "1",
		} {
			if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
				return fmt.Errorf("set %s: %w", path, err)
			}
		}
		if err := setUp("lo"); err != nil {
			return err
		}
		if err := addBridge(bedBridge, bedGateway, bedVIP, bedEmptyVIP); err != nil {
			return err
		}
		return addVeth("out", "eth0", bed.outside, "", bedNodeOut)
	})
	bed.prepareHost(t, bed.outside, bedOutside, bedNodeOut.Addr())
	inNetns(t, bed.node, func() error { return addVeth("vclient", "eth0", bed.client, bedBridge, netip.Prefix{}) })
	bed.prepareHost(t, bed.client, bedClient, bedGateway.Addr())
	for i, ip := range bedBackendIP {
		b := newNetns(t)
		bed.backends = append(bed.backends, b)
		inNetns(t, bed.node, func() error {
			return addVeth(fmt.Sprintf("vback%d", i), "eth0", b, bedBridge, netip.Prefix{})
		})
		bed.prepareHost(t, b, netip.PrefixFrom(ip, 24), bedGateway.Addr())
		serveName(t, b, fmt.Sprintf("backend-%d", i))
	}
	return bed
}

// prepareHost gives eth0 of n the address and a default route through gw, and sets it up.
func (bed *testbed) prepareHost(t *testing.T, n ns.NetNS, addr netip.Prefix, gw netip.Addr) {
	t.Helper()
	inNetns(t, n, func() error {
		if err := setUp("lo"); err != nil {
			return err
		}
		if err := addAddr("eth0", addr); err != nil {
			return err
		}
		if err := setUp("eth0"); err != nil {
			return err
		}
		route := &netlink.Route{Gw: gw.AsSlice()}
		if err := netlink.RouteAdd(route); err != nil {
			return fmt.Errorf("add default route via %s: %w", gw, err)
		}
		return nil
	})
}

// serveName answers every TCP connection to port 80 of n with "name peer-address\n".
func serveName(t *testing.T, n ns.NetNS, name string) {
	t.Helper()
	var l net.Listener
	inNetns(t, n, func() error {
		var err error
		l, err = net.Listen("tcp4", fmt.Sprintf(":%d", bedPort))
		return err
	})
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// answer is what one connection got back.
type answer struct {
	backend string     // the name of the backend that answered
	peer    netip.Addr // the address the backend saw the connection come from
}

// dial connects from n to addr:port count times and returns the answers.
func dial(t *testing.T, n ns.NetNS, addr netip.Addr, port uint16, count int) []answer {
	t.Helper()
	var answers []answer
	inNetns(t, n, func() error {
		for range count {
			a, err := dialOnce(netip.AddrPortFrom(addr, port))
			if err != nil {
				return err
			}
			answers = append(answers, a)
		}
		return nil
	})
	return answers
}

func dialOnce(to netip.AddrPort) (answer, error) {
	c, err := net.DialTimeout("tcp4", to.String(), 5*time.Second)
	if err != nil {
		return answer{}, fmt.Errorf("dial %s: %w", to, err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != to.String() {
		return answer{}, fmt.Errorf("dial %s: connected to %s", to, got)
	}
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return answer{}, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return answer{}, fmt.Errorf("read the answer from %s: %w", to, err)
	}
	name, peer, ok := strings.Cut(strings.TrimSpace(line), " ")
	addr, perr := netip.ParseAddr(peer)
	if !ok || perr != nil {
		return answer{}, fmt.Errorf("answer %q from %s", line, to)
	}
	return answer{backend: name, peer: addr}, nil
}

// addBridge adds a bridge with the gateway address and the VIPs as /32, and sets it up.
func addBridge(name string, gw netip.Prefix, vips ...netip.Addr) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return fmt.Errorf("add bridge %s: %w", name, err)
	}
	if err := addAddr(name, gw); err != nil {
		return err
	}
	for _, v := range vips {
		if err := addAddr(name, netip.PrefixFrom(v, 32)); err != nil {
			return err
		}
	}
	return setUp(name)
}

// addVeth adds a veth pair from the current namespace: name here, with addr if valid, enslaved
// to master if not empty, and up; peer in peerNS.
func addVeth(name, peer string, peerNS ns.NetNS, master string, addr netip.Prefix) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peer, PeerNamespace: netlink.NsFd(int(peerNS.Fd()))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", name, peer, err)
	}
	if master != "" {
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
		// As shoal-bridge sets its ports: a frame may go back out the port it came in on.
		if err := netlink.LinkSetHairpin(link, true); err != nil {
			return fmt.Errorf("set hairpin on %s: %w", name, err)
		}
	}
	if addr.IsValid() {
		if err := addAddr(name, addr); err != nil {
			return err
		}
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
