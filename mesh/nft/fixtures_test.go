package nft

// This file builds the States the tests program: VIPs, ingress and host ports with addresses in
// 198.18.0.0/15, and the canonical form Read returns for a State.

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/shoal/shoal/mesh"
)

// ip4 is 198.18.0.0 + n, for n below 2^17.
func ip4(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, byte(18 + n>>16), byte(n >> 8), byte(n)})
}

// maxTestBackends is the most backends a test VIP has.
const maxTestBackends = 10

// backendIP is backend j of VIP i: 198.18.64.0 + 10·i + j, for up to 10,000 VIPs.
func backendIP(i, j int) netip.Addr { return ip4(1<<14 + maxTestBackends*i + j) }

// testVIP is VIP i, at 198.18.0.1 + i, with the given number of backends.
func testVIP(i, backends int) mesh.VIP {
	v := mesh.VIP{
		Service: fmt.Sprintf("svc%04d", i), Name: fmt.Sprintf("web-%d", i), Network: "nw0123456789",
		Addr: ip4(1 + i),
	}
	for j := range backends {
		v.Backends = append(v.Backends, backendIP(i, j))
	}
	return v
}

// testState has vips VIPs of backends backends each, an ingress port with two backends, a host
// port with one, and an ingress port without backends.
func testState(vips, backends int) mesh.State {
	s := mesh.State{SNAT: netip.MustParseAddr("198.19.255.254")}
	for i := range vips {
		s.VIPs = append(s.VIPs, testVIP(i, backends))
	}
	s.Ports = []mesh.Port{
		{Service: "svc0000", Name: "web-0", Protocol: mesh.TCP, Published: 8080, Mode: mesh.Ingress,
			Backends: []mesh.Backend{{Addr: backendIP(0, 1), Port: 80}, {Addr: backendIP(0, 0), Port: 80}}},
		{Service: "svc0001", Name: "dns", Protocol: mesh.UDP, Published: 53, Mode: mesh.Host,
			Backends: []mesh.Backend{{Addr: backendIP(1, 0), Port: 5353}}},
		{Service: "svc0002", Name: "idle", Protocol: mesh.TCP, Published: 9000, Mode: mesh.Ingress},
	}
	return s
}

// canonical is s as Read returns it: VIPs by address, ports by protocol and port, backends
// sorted, nil for none.
func canonical(s mesh.State) mesh.State {
	out := mesh.State{SNAT: s.SNAT}
	for _, v := range s.VIPs {
		v.Backends = slices.Clone(v.Backends)
		slices.SortFunc(v.Backends, netip.Addr.Compare)
		out.VIPs = append(out.VIPs, v)
	}
	slices.SortFunc(out.VIPs, func(a, b mesh.VIP) int { return a.Addr.Compare(b.Addr) })
	for _, p := range s.Ports {
		p.Backends = slices.Clone(p.Backends)
		slices.SortFunc(p.Backends, compareBackends)
		out.Ports = append(out.Ports, p)
	}
	slices.SortFunc(out.Ports, func(a, b mesh.Port) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Published, b.Published))
	})
	return out
}

// newTestBalancer returns a Balancer on a table of the test's own.
func newTestBalancer(tb testing.TB, cfg Config) *Balancer {
	tb.Helper()
	if cfg.Table == "" {
		cfg.Table = "shoal-test"
	}
	b, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
