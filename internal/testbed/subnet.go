package testbed

// This file owns the choice of a bed's underlay subnet: a /24 in 198.18.100-199.0 that no
// interface of the host has and no other live bed of this process holds.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
)

var (
	// subnetsMu guards subnets.
	subnetsMu sync.Mutex
	// subnets holds the subnets PickSubnet handed out and ReleaseSubnet has not taken back.
	subnets = map[netip.Prefix]bool{}
)

// SubnetOnHost tells whether an interface of the caller's network namespace has an address
// inside p.
func SubnetOnHost(p netip.Prefix) (bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, fmt.Errorf("list the host's interface addresses: %w", err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip, ok := netip.AddrFromSlice(ipn.IP); ok && p.Contains(ip.Unmap()) {
			return true, nil
		}
	}
	return false, nil
}

// PickSubnet picks 198.18.B.0/24 for bed k, B in 100..199, starting from (pid+k) mod 100 so
// that concurrent runs tend to differ, and skipping any /24 that an interface of the host has or
// that this process already holds. The caller gives it back with ReleaseSubnet.
func PickSubnet(k int) (netip.Prefix, error) {
	subnetsMu.Lock()
	defer subnetsMu.Unlock()
	start := os.Getpid() + k
	for i := range 100 {
		b := 100 + ((start+i)%100+100)%100 // a negative k still lands in 100..199
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(b), 0}), 24)
		if subnets[p] {
			continue
		}
		onHost, err := SubnetOnHost(p)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("pick a subnet for bed %d: %w", k, err)
		}
		if !onHost {
			subnets[p] = true
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("pick a subnet for bed %d: every 198.18.100-199.0/24 is on the host or in use", k)
}

// ReleaseSubnet lets a later PickSubnet of this process hand out p again; releasing a subnet
// not held is no error.
func ReleaseSubnet(p netip.Prefix) {
	subnetsMu.Lock()
	defer subnetsMu.Unlock()
	delete(subnets, p)
}
