package cni

// This file owns the MAC address a task's interface gets on a network: derived
// from its address, so the MAC moves with the IP and neighbours' caches stay
// right when a slot's task is rescheduled.

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/shoal/shoal/ipam"
)

// MACOf is the MAC address of the interface holding prefix's address
// ("a.b.c.d/len" or an IPv6 prefix): 02:42 (locally administered, unicast)
// followed by the four IPv4 bytes, or by the last four bytes of an IPv6
// address.
func MACOf(prefix string) (net.HardwareAddr, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("mac of %q: %w", prefix, err)
	}
	return ipam.MACOf(p.Addr()), nil
}
