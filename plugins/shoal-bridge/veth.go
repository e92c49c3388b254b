// This file owns an attachment's veth pair: the container end inside the
// sandbox's namespace, the host end (named by hostVethName) on the bridge.

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/shoal/shoal/overlay"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ensureIfaceAbsent fails when ifName already exists in netns: the spec has
// ADD fail rather than take over an interface it did not create.
func ensureIfaceAbsent(netns ns.NetNS, ifName string) error {
	return netns.Do(func(ns.NetNS) error {
		_, err := netlinksafe.LinkByName(ifName)
		switch {
		case err == nil:
			return types.NewError(types.ErrInvalidEnvironmentVariables,
				fmt.Sprintf("shoal-bridge: interface %q already exists in netns %s: CNI_IFNAME must name a new interface", ifName, netns.Path()), "")
		case overlay.IsLinkNotFound(err):
			return nil
		default:
			return fmt.Errorf("look up %q in netns %s: %w", ifName, netns.Path(), err)
		}
	})
}

// createVeth creates the pair from inside netns, the container end called
// ifName with the given MAC (nil: the kernel's choice), the host end called
// hostName and moved to the plugin's own namespace, both with the MTU. The
// container end gets GRO: traffic from other nodes arrives decapsulated one
// segment at a time, and the receiving task's stack would otherwise handle
// every segment on its own (VXLAN reached about 0.7 of the bridge's TCP
// throughput without it, see docs/benchmarks.md). It is not an attachment's
// requirement: ADD warns when it cannot be set, and CHECK does not look at it
// (attachments made before it came have it off).
func createVeth(netns ns.NetNS, ifName, hostName string, mtu int, mac net.HardwareAddr) (*current.Interface, error) {
	macStr := ""
	if mac != nil {
		macStr = mac.String()
	}
	cont := &current.Interface{Sandbox: netns.Path()}
	err := netns.Do(func(hostNS ns.NetNS) error {
		_, contVeth, err := ip.SetupVethWithName(ifName, hostName, mtu, macStr, hostNS)
		if err != nil {
			return err
		}
		if err := overlay.EnableGRO(contVeth.Name); err != nil {
			// A matter of throughput, not of reaching the task: the attachment stands.
			slog.Warn("turn on GRO on the container interface", "netns", netns.Path(), "interface", contVeth.Name, "err", err)
		}
		cont.Name = contVeth.Name
		cont.Mac = contVeth.HardwareAddr.String()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create veth pair %s (host) / %s (netns %s): %w", hostName, ifName, netns.Path(), err)
	}
	return cont, nil
}

// attachHostVeth enslaves the host end to the bridge and sets its hairpin
// mode, so a container can reach itself through an address that the host
// translates back to it. It then tells the bridge that contMAC is on that
// port (a static entry, gone with the port): the container's MAC may have a
// static entry on the network's VXLAN port from when the task ran on another
// node (a task keeps its IP, so its MAC, when it moves), which would send the
// frames of its neighbours here to its old node until the node's overlay
// catches up, or until the container sent a frame and the bridge learnt it.
func attachHostVeth(hostName string, br *netlink.Bridge, hairpin bool, contMAC net.HardwareAddr) (*current.Interface, error) {
	link, err := netlinksafe.LinkByName(hostName)
	if err != nil {
		return nil, fmt.Errorf("look up host veth %q: %w", hostName, err)
	}
	if err := netlink.LinkSetMaster(link, br); err != nil {
		return nil, fmt.Errorf("enslave host veth %q to bridge %q: %w", hostName, br.Attrs().Name, err)
	}
	if err := netlink.LinkSetHairpin(link, hairpin); err != nil {
		return nil, fmt.Errorf("set hairpin %t on host veth %q: %w", hairpin, hostName, err)
	}
	if err := overlay.SetStaticBridgeEntry(link.Attrs().Index, contMAC); err != nil {
		return nil, fmt.Errorf("put the container's MAC %s on bridge port %q: %w", contMAC, hostName, err)
	}
	return &current.Interface{Name: hostName, Mac: link.Attrs().HardwareAddr.String()}, nil
}

// deleteLinkIfExists deletes the named link of the plugin's namespace; a link
// that is already gone is not an error. Deleting a veth end deletes its peer,
// wherever that is.
func deleteLinkIfExists(name string) error {
	link, err := netlinksafe.LinkByName(name)
	if overlay.IsLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %q: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %q: %w", name, err)
	}
	return nil
}
