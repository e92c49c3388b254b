package testbed

// This file owns the links of a bed: the underlay bridge and the veth pairs that plug nodes
// into it. Each is made in place with ip -n, so no link ever appears in the caller's namespace.

import (
	"fmt"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/shoal/shoal/overlay"
)

const (
	// Bridge is the underlay switch, in the bed's underlay namespace.
	Bridge = "ulbr"
	// NodeLink is a node's end of its underlay veth, in the node's namespace.
	NodeLink = "ul0"
	// linkMTU is the MTU of every underlay link.
	linkMTU = "1500"
)

// addBridge creates the bridge named bridge in namespace ns and brings it up.
func addBridge(ns, bridge string) error {
	if err := ipCmd("-n", ns, "link", "add", bridge, "mtu", linkMTU, "type", "bridge"); err != nil {
		return fmt.Errorf("create bridge %s in %s: %w", bridge, ns, err)
	}
	if err := ipCmd("-n", ns, "link", "set", bridge, "up"); err != nil {
		return fmt.Errorf("bring up bridge %s in %s: %w", bridge, ns, err)
	}
	return nil
}

// plugVeth connects namespace nodeNS to bridge in namespace switchNS with a veth pair: port is
// the end on the bridge, nodeLink the end in nodeNS, which gets addr. Both ends end up up, and
// nodeLink has GRO on, as a physical NIC's driver has by default (a veth's has it off): without
// it a node takes VXLAN from its peers one segment at a time, which no real node does.
func plugVeth(switchNS, bridge, port, nodeNS, nodeLink string, addr netip.Prefix) error {
	if err := ipCmd("-n", switchNS, "link", "add", port, "mtu", linkMTU, "type", "veth",
		"peer", "name", nodeLink, "netns", nodeNS, "mtu", linkMTU); err != nil {
		return fmt.Errorf("create veth %s (%s) to %s (%s): %w", port, switchNS, nodeLink, nodeNS, err)
	}
	steps := [][]string{
		{"-n", switchNS, "link", "set", port, "master", bridge, "up"},
		{"-n", nodeNS, "addr", "add", addr.String(), "dev", nodeLink},
		{"-n", nodeNS, "link", "set", nodeLink, "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return fmt.Errorf("set up veth %s to %s: %w", port, nodeNS, err)
		}
	}
	if err := ns.WithNetNSPath(NetnsPath(nodeNS), func(ns.NetNS) error {
		return overlay.EnableGRO(nodeLink)
	}); err != nil {
		return fmt.Errorf("set up veth %s to %s: %w", port, nodeNS, err)
	}
	return nil
}

// setLinkUp sets link in namespace ns up or down.
func setLinkUp(ns, link string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if err := ipCmd("-n", ns, "link", "set", link, state); err != nil {
		return fmt.Errorf("set %s in %s %s: %w", link, ns, state, err)
	}
	return nil
}
