package ipvs

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/shoal/shoal/mesh"
)

// ip4 is 198.18.0.0 + n.
func ip4(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, byte(18 + n>>16), byte(n >> 8), byte(n)})
}

// testState has vips VIPs (198.18.0.1 + i) of backends backends each (198.18.64.0 + 10·i + j),
// an ingress port with two backends, a host port with one and an ingress port without any.
func testState(vips, backends int) mesh.State {
	s := mesh.State{SNAT: netip.MustParseAddr("198.19.255.254")}
	for i := range vips {
		v := mesh.VIP{Service: fmt.Sprintf("svc%d", i), Name: fmt.Sprintf("web-%d", i), Network: "nw1", Addr: ip4(1 + i)}
		for j := range backends {
			v.Backends = append(v.Backends, ip4(1<<14+10*i+j))
		}
		s.VIPs = append(s.VIPs, v)
	}
	s.Ports = []mesh.Port{
		{Service: "svc0", Name: "web-0", Protocol: mesh.TCP, Published: 8080, Mode: mesh.Ingress,
			Backends: []mesh.Backend{{Addr: ip4(1 << 14), Port: 80}, {Addr: ip4(1<<14 + 1), Port: 80}}},
		{Service: "svc1", Name: "dns", Protocol: mesh.UDP, Published: 53, Mode: mesh.Host,
			Backends: []mesh.Backend{{Addr: ip4(1<<14 + 10), Port: 5353}}},
		{Service: "svc2", Name: "idle", Protocol: mesh.TCP, Published: 9000, Mode: mesh.Ingress},
	}
	return s
}

// canonical is s as Read returns it: everything in order.
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
		sortBackends(p.Backends)
		out.Ports = append(out.Ports, p)
	}
	slices.SortFunc(out.Ports, func(a, b mesh.Port) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Published, b.Published))
	})
	return out
}
