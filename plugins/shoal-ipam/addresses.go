// This file turns the addresses the runtime passed in into CNI IP
// configurations: where the addresses come from, which subnet each belongs to,
// and which routes go with them. It chooses nothing itself.

package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// errNoAddress is the message of ADD and CHECK without any address.
const errNoAddress = "shoal-ipam: no address given: the manager assigns addresses; runtimeConfig.ips is empty"

// requestedAddresses returns the addresses of the first source that has any,
// in order: runtimeConfig.ips, args.cni.ips, CNI_ARGS IP=a,b.
func requestedAddresses(n *netConf, cniArgs string) []string {
	if len(n.RuntimeConfig.IPs) > 0 {
		return n.RuntimeConfig.IPs
	}
	if len(n.Args.CNI.IPs) > 0 {
		return n.Args.CNI.IPs
	}
	return ipsFromCNIArgs(cniArgs)
}

// ipsFromCNIArgs reads IP=a,b from CNI_ARGS ("K1=V1;K2=V2"). Other keys belong
// to other plugins and are ignored.
func ipsFromCNIArgs(cniArgs string) []string {
	for _, pair := range strings.Split(cniArgs, ";") {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(key) != "IP" {
			continue
		}
		var ips []string
		for _, ip := range strings.Split(value, ",") {
			if ip = strings.TrimSpace(ip); ip != "" {
				ips = append(ips, ip)
			}
		}
		return ips
	}
	return nil
}

// assignSubnets validates each requested address against the subnets and
// returns one IP configuration per address, in the order given: the address
// with its subnet's prefix length, and that subnet's gateway.
func assignSubnets(requested []string, subnets []subnet) ([]*current.IPConfig, error) {
	if len(requested) == 0 {
		return nil, invalidConfig(errNoAddress)
	}
	seen := make(map[netip.Addr]bool, len(requested))
	ips := make([]*current.IPConfig, 0, len(requested))
	for _, req := range requested {
		addr, bits, err := parseRequested(req)
		if err != nil {
			return nil, invalidConfig("shoal-ipam: " + err.Error())
		}
		s, err := subnetOf(addr, bits, subnets)
		if err != nil {
			return nil, invalidConfig("shoal-ipam: " + err.Error())
		}
		if seen[addr] {
			return nil, invalidConfig(fmt.Sprintf("shoal-ipam: address %s is given twice", addr))
		}
		seen[addr] = true
		ips = append(ips, &current.IPConfig{
			Address: net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(s.Prefix.Bits(), addr.BitLen())},
			Gateway: s.Gateway.AsSlice(),
		})
	}
	return ips, nil
}

// parseRequested accepts "198.18.0.5/24" or "198.18.0.5". bits is -1 when the
// address carries no prefix length.
func parseRequested(req string) (netip.Addr, int, error) {
	if strings.Contains(req, "/") {
		p, err := netip.ParsePrefix(req)
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("address %q is neither an IP address nor in CIDR notation: %w", req, err)
		}
		return p.Addr().Unmap(), p.Bits(), nil
	}
	addr, err := netip.ParseAddr(req)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("address %q is neither an IP address nor in CIDR notation: %w", req, err)
	}
	return addr.Unmap(), -1, nil
}

// subnetOf finds the subnet holding addr and checks that addr is usable there.
func subnetOf(addr netip.Addr, bits int, subnets []subnet) (subnet, error) {
	for _, s := range subnets {
		if !s.Prefix.Contains(addr) {
			continue
		}
		if bits >= 0 && bits != s.Prefix.Bits() {
			return subnet{}, fmt.Errorf("address %s/%d has prefix length /%d but its subnet %s is /%d",
				addr, bits, bits, s.Prefix, s.Prefix.Bits())
		}
		if reason := unusableReason(addr, s.Prefix); reason != "" {
			return subnet{}, fmt.Errorf("address %s %s (subnet %s)", addr, reason, s.Prefix)
		}
		if addr == s.Gateway {
			return subnet{}, fmt.Errorf("address %s is the gateway of subnet %s", addr, s.Prefix)
		}
		return s, nil
	}
	return subnet{}, fmt.Errorf("address %s is outside the network's subnets (%s)", addr, subnetList(subnets))
}

// routesFor returns the configured routes for the given addresses. A route
// without a gateway goes via the gateway of the first address of its family;
// a route of a family none of the addresses has is left out, since the
// interface could not reach it.
func routesFor(configured []*types.Route, ips []*current.IPConfig) []*types.Route {
	routes := make([]*types.Route, 0, len(configured))
	for _, r := range configured {
		route := r.Copy()
		if route.GW == nil {
			gw := gatewayOfFamily(ips, route.Dst.IP.To4() != nil)
			if gw == nil {
				continue
			}
			route.GW = gw
		}
		routes = append(routes, route)
	}
	return routes
}

func gatewayOfFamily(ips []*current.IPConfig, v4 bool) net.IP {
	for _, ip := range ips {
		if (ip.Address.IP.To4() != nil) == v4 {
			return ip.Gateway
		}
	}
	return nil
}
