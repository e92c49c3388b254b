package testbed

// This file tests the subnet choice: in range, off the host, never handed out twice while held.

import (
	"net"
	"net/netip"
	"testing"
)

// TestPickSubnet checks that PickSubnet hands out 198.18.100-199.0/24s that are not on the
// host, never the same one twice while it is held, and one again once it is released.
func TestPickSubnet(t *testing.T) {
	held := map[netip.Prefix]bool{}
	var order []netip.Prefix
	t.Cleanup(func() {
		for p := range held {
			ReleaseSubnet(p)
		}
	})
	for range 5 {
		p, err := PickSubnet(7) // the same k each time: only the bookkeeping keeps them apart
		if err != nil {
			t.Fatal(err)
		}
		a := p.Addr().As4()
		if p.Bits() != 24 || a[0] != 198 || a[1] != 18 || a[2] < 100 || a[2] > 199 || a[3] != 0 {
			t.Errorf("PickSubnet(7) = %s, want 198.18.B.0/24 with B in 100..199", p)
		}
		if held[p] {
			t.Errorf("PickSubnet(7) handed out %s twice", p)
		}
		if on, err := SubnetOnHost(p); err != nil || on {
			t.Errorf("PickSubnet(7) = %s, which is on the host (%v)", p, err)
		}
		held[p] = true
		order = append(order, p)
	}
	first := order[2]
	ReleaseSubnet(first)
	delete(held, first)
	ReleaseSubnet(first) // releasing what is not held is no error
	again, err := PickSubnet(7)
	if err != nil {
		t.Fatal(err)
	}
	held[again] = true
	if again != first {
		t.Errorf("after releasing %s, PickSubnet(7) = %s, want it back: the ones before it are still held", first, again)
	}
}

// TestSubnetOnHost checks SubnetOnHost against the host's own addresses: each one's /32 (or
// /128) is on the host.
func TestSubnetOnHost(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		p := netip.PrefixFrom(ip, ip.BitLen())
		if on, err := SubnetOnHost(p); err != nil || !on {
			t.Errorf("SubnetOnHost(%s) = %v, %v; want true (the host has %s)", p, on, err, ip)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("the host has no interface address to check against")
	}
}
