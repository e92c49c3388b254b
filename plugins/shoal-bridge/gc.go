// This file holds GC (spec 1.1.0). Given the attachments the runtime still
// considers valid, it deletes the host veths on this network's bridge that
// belong to none of them, removes the firewall rules of every shoal bridge
// that no longer exists, and hands GC on to the IPAM plugin.

package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/coreos/go-iptables/iptables"
	"github.com/shoal/shoal/overlay"
)

func cmdGC(args *skel.CmdArgs) error {
	conf, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	valid := make(map[string]bool, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		valid[hostVethName(a.ContainerID, a.IfName)] = true
	}
	// The lock keeps GC from deleting rules that a concurrent first ADD on a
	// re-created bridge has just added.
	if err := withNodeLock(func() error {
		if err := removeStaleVeths(conf.Bridge, valid); err != nil {
			return err
		}
		return removeRulesOfGoneBridges()
	}); err != nil {
		return err
	}
	return invoke.DelegateGC(context.Background(), conf.IPAM.Type, args.StdinData, nil)
}

// removeStaleVeths deletes the bridge's ports that shoal-bridge created (by
// their name's shape) and whose name is not in valid. Other ports, such as an
// overlay's VXLAN device, are left alone. A missing bridge has no ports.
func removeStaleVeths(bridge string, valid map[string]bool) error {
	br, err := netlinksafe.LinkByName(bridge)
	if overlay.IsLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up bridge %q: %w", bridge, err)
	}
	links, err := netlinksafe.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, link := range links {
		name := link.Attrs().Name
		if link.Attrs().MasterIndex != br.Attrs().Index || link.Type() != "veth" || !isHostVethName(name) || valid[name] {
			continue
		}
		if err := deleteLinkIfExists(name); err != nil {
			return fmt.Errorf("delete stale attachment: %w", err)
		}
		slog.Info("deleted the host veth of an attachment the runtime no longer lists", "bridge", bridge, "veth", name)
	}
	return nil
}

// removeRulesOfGoneBridges deletes, in each address family whose iptables is
// installed, the rules of shoal bridges that do not exist any more.
func removeRulesOfGoneBridges() error {
	bridgeExists := func(name string) (bool, error) {
		_, err := netlinksafe.LinkByName(name)
		if overlay.IsLinkNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("look up bridge %q: %w", name, err)
		}
		return true, nil
	}
	for _, proto := range []iptables.Protocol{iptables.ProtocolIPv4, iptables.ProtocolIPv6} {
		fw, err := newFirewall(proto)
		if err != nil {
			if proto == iptables.ProtocolIPv6 {
				continue // no ip6tables: shoal-bridge cannot have added IPv6 rules
			}
			return err
		}
		removed, err := fw.removeRulesOfGoneBridges(bridgeExists)
		if err != nil {
			return fmt.Errorf("%s firewall rules: %w", protoName(proto), err)
		}
		for _, bridge := range removed {
			slog.Info("removed the firewall rules of a bridge that is gone", "bridge", bridge, "family", protoName(proto))
		}
	}
	return nil
}
