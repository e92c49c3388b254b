// This file owns the network's bridge in the node's namespace: creating it,
// keeping it up with the configured MTU, and giving it each subnet's gateway
// address. Every function is ensure-style: it changes only what differs.

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ensureBridge returns the bridge called name, creating it if needed, up and
// with the given MTU.
func ensureBridge(name string, mtu int) (*netlink.Bridge, error) {
	link, err := netlinksafe.LinkByName(name)
	if isLinkNotFound(err) {
		link, err = createBridge(name, mtu)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %q: %w", name, err)
	}
	br, ok := link.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("%q exists but is a %s device, not a bridge", name, link.Type())
	}
	if br.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(br, mtu); err != nil {
			return nil, fmt.Errorf("set MTU %d on bridge %q: %w", mtu, name, err)
		}
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(br); err != nil {
			return nil, fmt.Errorf("set bridge %q up: %w", name, err)
		}
	}
	return bridgeByName(name)
}

// createBridge adds the bridge and pins its MAC address. Without the pin the
// kernel gives a bridge the lowest MAC of its ports, so the gateway's MAC would
// change as containers come and go and their neighbour caches would go stale.
func createBridge(name string, mtu int) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.MTU = mtu
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create: %w", err)
	}
	link, err := netlinksafe.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up after creating: %w", err)
	}
	if err := netlink.LinkSetHardwareAddr(link, link.Attrs().HardwareAddr); err != nil {
		return nil, fmt.Errorf("pin MAC %s: %w", link.Attrs().HardwareAddr, err)
	}
	return link, nil
}

// bridgeByName looks up an existing bridge.
func bridgeByName(name string) (*netlink.Bridge, error) {
	link, err := netlinksafe.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up bridge %q: %w", name, err)
	}
	br, ok := link.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("%q is a %s device, not a bridge", name, link.Type())
	}
	return br, nil
}

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

// ensureGatewayAddrs adds each gateway address the bridge does not hold yet.
// A gateway held with another prefix length means two networks disagree about
// a subnet, which is an error, not something to paper over.
func ensureGatewayAddrs(br netlink.Link, gws []*net.IPNet) error {
	held, err := netlinksafe.AddrList(br, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of bridge %q: %w", br.Attrs().Name, err)
	}
	for _, gw := range gws {
		if err := holdsAddr(held, gw); err == nil {
			continue
		} else if !errors.Is(err, errAddrMissing) {
			return fmt.Errorf("bridge %q: %w", br.Attrs().Name, err)
		}
		if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: gw}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add gateway address %s to bridge %q: %w", gw, br.Attrs().Name, err)
		}
	}
	return nil
}

var errAddrMissing = errors.New("address missing")

// holdsAddr checks that held contains want with want's prefix length.
func holdsAddr(held []netlink.Addr, want *net.IPNet) error {
	for _, a := range held {
		if !a.IP.Equal(want.IP) {
			continue
		}
		if a.IPNet.String() != want.String() {
			return fmt.Errorf("holds %s, want %s", a.IPNet, want)
		}
		return nil
	}
	return fmt.Errorf("%w: %s", errAddrMissing, want)
}

func isLinkNotFound(err error) bool {
	var notFound netlink.LinkNotFoundError
	return errors.As(err, &notFound)
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
		if err := netlink.LinkDel(l); err != nil && !isLinkNotFound(err) {
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
