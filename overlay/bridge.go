package overlay

// This file owns a network's bridge on a node: creating it, keeping it up with the network's MTU,
// and giving it each subnet's gateway address. shoal's CNI plugin (shoal-bridge) makes the bridge
// for a node's first task; the agent makes it where no task runs but the node must still reach
// the network (published ingress ports). Every function is ensure-style: it changes only what
// differs.

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnsureBridge returns the bridge called name, creating it if needed, up and
// with the given MTU.
func EnsureBridge(name string, mtu int) (*netlink.Bridge, error) {
	link, err := netlinksafe.LinkByName(name)
	if IsLinkNotFound(err) {
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
	return BridgeByName(name)
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

// BridgeByName looks up an existing bridge.
func BridgeByName(name string) (*netlink.Bridge, error) {
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

// EnsureGatewayAddrs adds each gateway address the bridge does not hold yet.
// A gateway held with another prefix length means two networks disagree about
// a subnet, which is an error, not something to paper over.
func EnsureGatewayAddrs(br netlink.Link, gws []*net.IPNet) error {
	held, err := netlinksafe.AddrList(br, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of bridge %q: %w", br.Attrs().Name, err)
	}
	for _, gw := range gws {
		if err := HoldsAddr(held, gw); err == nil {
			continue
		} else if !errors.Is(err, ErrAddrMissing) {
			return fmt.Errorf("bridge %q: %w", br.Attrs().Name, err)
		}
		if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: gw}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add gateway address %s to bridge %q: %w", gw, br.Attrs().Name, err)
		}
	}
	return nil
}

// ErrAddrMissing says an address HoldsAddr looked for is not held.
var ErrAddrMissing = errors.New("address missing")

// HoldsAddr checks that held contains want with want's prefix length.
func HoldsAddr(held []netlink.Addr, want *net.IPNet) error {
	for _, a := range held {
		if !a.IP.Equal(want.IP) {
			continue
		}
		if a.IPNet.String() != want.String() {
			return fmt.Errorf("holds %s, want %s", a.IPNet, want)
		}
		return nil
	}
	return fmt.Errorf("%w: %s", ErrAddrMissing, want)
}

// IsLinkNotFound reports whether err says a link does not exist.
func IsLinkNotFound(err error) bool {
	var notFound netlink.LinkNotFoundError
	return errors.As(err, &notFound)
}
