package vipaddr

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoBridge says the bridge does not exist (no task of the network on this node).
var ErrNoBridge = errors.New("no such bridge")

// Changes counts what a Sync did.
type Changes struct{ Added, Removed int }

// Sync makes the /32 addresses of bridge exactly vips: it adds those missing and removes the
// others. vips must be IPv4; nothing is changed when one is not.
func Sync(bridge string, vips []netip.Addr) (Changes, error) {
	for i, v := range vips {
		if !v.Is4() {
			return Changes{}, fmt.Errorf("vips[%d]: %q is not an IPv4 address", i, v)
		}
	}
	link, err := bridgeLink(bridge)
	if err != nil {
		return Changes{}, err
	}
	held, err := read(link)
	if err != nil {
		return Changes{}, err
	}
	want := make(map[netip.Addr]bool, len(vips))
	for _, v := range vips {
		want[v] = true
	}
	var ch Changes
	for _, h := range held {
		if want[h] {
			delete(want, h)
			continue
		}
		if err := netlink.AddrDel(link, hostAddr(h)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return ch, fmt.Errorf("remove VIP %s from bridge %q: %w", h, bridge, err)
		}
		ch.Removed++
	}
	for _, v := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		if err := netlink.AddrAdd(link, hostAddr(v)); err != nil && !errors.Is(err, unix.EEXIST) {
			return ch, fmt.Errorf("add VIP %s to bridge %q: %w", v, bridge, err)
		}
		ch.Added++
	}
	return ch, nil
}

// Read returns the VIPs bridge holds, sorted.
func Read(bridge string) ([]netip.Addr, error) {
	link, err := bridgeLink(bridge)
	if err != nil {
		return nil, err
	}
	return read(link)
}

func read(link netlink.Link) ([]netip.Addr, error) {
	addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses of bridge %q: %w", link.Attrs().Name, err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ones, bits := a.Mask.Size(); ones != 32 || bits != 32 {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

func bridgeLink(name string) (netlink.Link, error) {
	link, err := netlinksafe.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil, fmt.Errorf("bridge %q: %w", name, ErrNoBridge)
		}
		return nil, fmt.Errorf("look up bridge %q: %w", name, err)
	}
	if link.Type() != "bridge" {
		return nil, fmt.Errorf("%q is a %s device, not a bridge", name, link.Type())
	}
	return link, nil
}

func hostAddr(a netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}}
}
