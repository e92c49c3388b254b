// This file owns the network's bridge in the node's namespace: creating it,
// keeping it up with the configured MTU, and giving it each subnet's gateway
// address. Every function is ensure-style: it changes only what differs.

package main

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/shoal/shoal/overlay"
	"github.com/vishvananda/netlink"
)

// gatewayAddrs returns the addresses the bridge must hold for ips: each
// gateway with its subnet's prefix length, once.
func gatewayAddrs(ips []*current.IPConfig) []*net.IPNet {
	var gws []*net.IPNet
	for _, ip := range ips {
		if ip.Gateway == nil {
			continue
		}
		gw := &net.IPNet{IP: ip.Gateway, Mask: ip.Address.Mask}
		if !containsIPNet(gws, gw) {
			gws = append(gws, gw)
		}
	}
	return gws
}

// subnetsOf returns the subnets (network prefixes) of ips, once each.
func subnetsOf(ips []*current.IPConfig) []*net.IPNet {
	var subnets []*net.IPNet
	for _, ip := range ips {
		s := &net.IPNet{IP: ip.Address.IP.Mask(ip.Address.Mask), Mask: ip.Address.Mask}
		if !containsIPNet(subnets, s) {
			subnets = append(subnets, s)
		}
	}
	return subnets
}

func containsIPNet(list []*net.IPNet, n *net.IPNet) bool {
	for _, m := range list {
		if m.String() == n.String() {
			return true
		}
	}
	return false
}

// staleBridgePrefix names the bridges shoal's agent makes ("shl" and 10 characters of the
// network's ID): the only ones shoal-bridge deletes on its own.
const staleBridgePrefix = "shl"

// removeStaleBridges deletes the bridges of removed networks that hold an address in one of
// subnets, which this bridge is about to use: the cluster never lets two networks overlap, so
// such a bridge is a leftover, and its connected route would take the new network's traffic. Only
// shoal's bridges without ports are deleted (their rules then go too); any other bridge holding
// such an address is an error that names it, since using the subnet would misroute.
func removeStaleBridges(current string, subnets []*net.IPNet) error {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	removed := false
	for _, l := range links {
		if l.Type() != "bridge" || l.Attrs().Name == current {
			continue
		}
		addrs, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("list addresses of %q: %w", l.Attrs().Name, err)
		}
		var clash *net.IPNet
		for _, a := range addrs {
			for _, sn := range subnets {
				if sn.Contains(a.IP) {
					clash = sn
				}
			}
		}
		if clash == nil {
			continue
		}
		ports := 0
		for _, other := range links {
			if other.Attrs().MasterIndex == l.Attrs().Index {
				ports++
			}
		}
		name := l.Attrs().Name
		if !strings.HasPrefix(name, staleBridgePrefix) || ports > 0 {
			return fmt.Errorf("bridge %q (%d ports) holds an address in subnet %s, which bridge %q is for: remove it, or the tasks of the network it served, first", name, ports, clash, current)
		}
		if err := netlink.LinkDel(l); err != nil && !overlay.IsLinkNotFound(err) {
			return fmt.Errorf("delete bridge %q of a removed network: %w", name, err)
		}
		slog.Info("deleted the bridge of a removed network, which held an address of this one's subnet", "bridge", name, "subnet", clash, "for", current)
		removed = true
	}
	if removed {
		return removeRulesOfGoneBridges()
	}
	return nil
}
