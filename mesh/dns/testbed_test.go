package dns

// This file builds what the tests share: the zones they serve, and for the tests that listen,
// a fresh network namespace per test holding a bridge with the gateway addresses, plus a
// client that queries from inside it. Every namespace is unnamed (ns.TempNetNS) and closed in
// t.Cleanup, so the kernel removes it with its links and sockets, also when a test fails.

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
)

const (
	testNetwork  = "nw0123456789abcdef"
	otherNetwork = "nwfedcba9876543210"
	gatewayLink  = "gw0" // the bridge holding the networks' gateway addresses, as on a node
)

var (
	gatewayA = netip.MustParseAddr("198.18.53.1") // testNetwork's gateway
	gatewayB = netip.MustParseAddr("198.18.54.1") // otherNetwork's gateway
	gatewayC = netip.MustParseAddr("198.18.55.1") // a third address on the link

	webVIP   = netip.MustParseAddr("198.18.53.2")
	webTasks = addrs("198.18.53.11", "198.18.53.12", "198.18.53.13")
	dbTasks  = addrs("198.18.53.21", "198.18.53.22")
)

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

// testServices are the services of the zones the tests serve:
//   - web: endpoint mode vip, three running tasks, slots 1-3;
//   - db: endpoint mode dnsrr, two running tasks, not replicated by slot (global);
//   - idle: endpoint mode dnsrr, nothing running.
func testServices() []Service {
	return []Service{
		{
			Name:  "web",
			VIP:   webVIP,
			Tasks: slices.Clone(webTasks),
			Slots: map[uint64]netip.Addr{1: webTasks[0], 2: webTasks[1], 3: webTasks[2]},
		},
		{Name: "db", Tasks: slices.Clone(dbTasks)},
		{Name: "idle"},
	}
}

// testZone is testNetwork's zone, listening at listen (the zero Addr: not listening).
func testZone(listen netip.Addr) Zone {
	return Zone{Network: testNetwork, Name: "front", Listen: listen, Services: testServices()}
}

// newTestServer returns a Server closed when the test ends.
func newTestServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.Log == nil {
		cfg.Log = testLogger(tb)
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates a network namespace with a bridge and binds port 53")
	}
}

// newTestNetns returns a fresh network namespace with lo up and a bridge up holding the
// gateway addresses given; it is closed (and so removed) when the test ends.
func newTestNetns(tb testing.TB, gateways ...netip.Addr) ns.NetNS {
	tb.Helper()
	requireRoot(tb)
	n, err := ns.TempNetNS()
	if err != nil {
		tb.Fatalf("create a network namespace: %v", err)
	}
	tb.Cleanup(func() { n.Close() })
	inNetns(tb, n, func() error {
		if err := setUp("lo"); err != nil {
			return err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = gatewayLink
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return fmt.Errorf("add bridge %s: %w", gatewayLink, err)
		}
		for _, gw := range gateways {
			if err := addAddr(gatewayLink, gw); err != nil {
				return err
			}
		}
		return setUp(gatewayLink)
	})
	return n
}

// inNetns runs fn on a thread locked to n. fn returns an error to fail the test.
func inNetns(tb testing.TB, n ns.NetNS, fn func() error) {
	tb.Helper()
	if err := n.Do(func(ns.NetNS) error { return fn() }); err != nil {
		tb.Fatal(err)
	}
}

// addAddr adds ip/24 to the link called name in the current namespace.
func addAddr(name string, ip netip.Addr) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	ipNet := &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet}); err != nil {
		return fmt.Errorf("add address %s to %s: %w", ip, name, err)
	}
	return nil
}

func setUp(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// syncIn calls s.Sync(zones) from inside n, where it opens its listeners.
func syncIn(tb testing.TB, n ns.NetNS, s *Server, zones ...Zone) {
	tb.Helper()
	inNetns(tb, n, func() error { return s.Sync(zones) })
}

// exchangeIn sends m over proto ("udp", "tcp") to server from inside n.
func exchangeIn(tb testing.TB, n ns.NetNS, proto string, server netip.Addr, m *dns.Msg) (*dns.Msg, error) {
	tb.Helper()
	var resp *dns.Msg
	var exErr error
	inNetns(tb, n, func() error {
		client := &dns.Client{Net: proto}
		resp, _, exErr = client.Exchange(m, netip.AddrPortFrom(server, 53).String())
		return nil
	})
	return resp, exErr
}

// queryIn asks server, from inside n over proto, for name of type qtype and fails the test if
// no answer comes.
func queryIn(tb testing.TB, n ns.NetNS, proto string, server netip.Addr, name string, qtype uint16) *dns.Msg {
	tb.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	resp, err := exchangeIn(tb, n, proto, server, m)
	if err != nil {
		tb.Fatalf("query %s %s at %s over %s: %v", name, dns.TypeToString[qtype], server, proto, err)
	}
	return resp
}

// answerAddrs are the addresses of resp's A records, in order.
func answerAddrs(resp *dns.Msg) []netip.Addr {
	var out []netip.Addr
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			ip, _ := netip.AddrFromSlice(a.A)
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// sorted returns a sorted copy of a.
func sorted(a []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	slices.SortFunc(out, netip.Addr.Compare)
	return out
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
