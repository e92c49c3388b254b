// This file holds ADD: the IPAM plugin's addresses first (they decide the
// bridge's gateways and the container's MAC), then the node's shared state
// under the node lock, then the attachment's own veth pair. Each step that
// leaves something behind registers its undo, run if a later step fails.

package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/coreos/go-iptables/iptables"
	"github.com/shoal/shoal/overlay"
	"github.com/vishvananda/netlink"
)

// Positions of the interfaces in ADD's result.
const (
	resultBridge = iota
	resultHostVeth
	resultContainer
)

func cmdAdd(args *skel.CmdArgs) (err error) {
	conf, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	mac, err := conf.runtimeMAC()
	if err != nil {
		return err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", args.Netns, err)
	}
	defer netns.Close()
	if err := ensureIfaceAbsent(netns, args.IfName); err != nil {
		return err
	}

	var undo []func()
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()

	ipamResult, err := execIPAMAdd(conf, args.StdinData)
	if err != nil {
		return err
	}
	undo = append(undo, func() {
		if err := ipam.ExecDel(conf.IPAM.Type, args.StdinData); err != nil {
			slog.Warn("release addresses after a failed ADD", "ipam", conf.IPAM.Type, "container", args.ContainerID, "err", err)
		}
	})

	br, err := setUpNode(conf, ipamResult.IPs)
	if err != nil {
		return err
	}

	hostName := hostVethName(args.ContainerID, args.IfName)
	// A host end with this name belongs to an earlier ADD of the same
	// attachment whose namespace is gone (the container interface is not in
	// this one, ensureIfaceAbsent checked): it is stale.
	if err := deleteLinkIfExists(hostName); err != nil {
		return fmt.Errorf("delete stale host veth: %w", err)
	}
	if mac == nil {
		mac = macFromIPv4(ipamResult.IPs)
	}
	contIface, err := createVeth(netns, args.IfName, hostName, conf.MTU, mac)
	if err != nil {
		return err
	}
	undo = append(undo, func() {
		if err := deleteLinkIfExists(hostName); err != nil {
			slog.Warn("delete veth pair after a failed ADD", "veth", hostName, "err", err)
		}
	})
	contMAC, err := net.ParseMAC(contIface.Mac)
	if err != nil {
		return fmt.Errorf("container interface %q has MAC %q: %w", args.IfName, contIface.Mac, err)
	}
	hostIface, err := attachHostVeth(hostName, br, conf.hairpin, contMAC)
	if err != nil {
		return err
	}

	result := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: make([]*current.Interface, 3),
		IPs:        ipamResult.IPs,
		Routes:     ipamResult.Routes,
		DNS:        ipamResult.DNS,
	}
	result.Interfaces[resultHostVeth] = hostIface
	result.Interfaces[resultContainer] = contIface
	for _, ipc := range result.IPs {
		ipc.Interface = current.Int(resultContainer)
	}
	if err := netns.Do(func(ns.NetNS) error {
		return ipam.ConfigureIface(args.IfName, result)
	}); err != nil {
		return fmt.Errorf("configure %q in netns %s: %w", args.IfName, netns.Path(), err)
	}

	// Read the bridge last: one that shoal-bridge did not create has no
	// pinned MAC and may just have taken its new port's.
	br, err = overlay.BridgeByName(conf.Bridge)
	if err != nil {
		return err
	}
	result.Interfaces[resultBridge] = &current.Interface{Name: br.Attrs().Name, Mac: br.Attrs().HardwareAddr.String()}
	return types.PrintResult(result, conf.CNIVersion)
}

// execIPAMAdd runs the IPAM plugin and checks that its result is one
// shoal-bridge can apply: at least one address, each with a gateway the
// bridge will hold.
func execIPAMAdd(conf *config, stdin []byte) (*current.Result, error) {
	r, err := ipam.ExecAdd(conf.IPAM.Type, stdin)
	if err != nil {
		return nil, err // the IPAM plugin's CNI error, passed on as it is
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("convert the result of ipam plugin %q: %w", conf.IPAM.Type, err)
	}
	if len(res.IPs) == 0 {
		return nil, fmt.Errorf("ipam plugin %q returned no address", conf.IPAM.Type)
	}
	for _, ipc := range res.IPs {
		if ipc.Gateway == nil {
			return nil, fmt.Errorf("ipam plugin %q returned %s without a gateway: the bridge routes each subnet through its gateway",
				conf.IPAM.Type, ipc.Address.String())
		}
	}
	return res, nil
}

// setUpNode readies the node's shared state for the network: the bridge with
// its MTU and gateway addresses, IP forwarding for the families in use, and
// the bridge's firewall rules. Concurrent ADDs and GCs serialise on the node
// lock, so two first ADDs on one network cannot both create the bridge or
// duplicate a rule.
func setUpNode(conf *config, ips []*current.IPConfig) (*netlink.Bridge, error) {
	var br *netlink.Bridge
	err := withNodeLock(func() error {
		var err error
		if br, err = overlay.EnsureBridge(conf.Bridge, conf.MTU); err != nil {
			return err
		}
		if err := removeStaleBridges(conf.Bridge, subnetsOf(ips)); err != nil {
			return err
		}
		if err := overlay.EnsureGatewayAddrs(br, gatewayAddrs(ips)); err != nil {
			return err
		}
		if err := ip.EnableForward(ips); err != nil {
			return fmt.Errorf("enable IP forwarding: %w", err)
		}
		return ensureFirewall(conf, subnetsOf(ips))
	})
	return br, err
}

// ensureFirewall adds the bridge's rules in each address family it carries.
func ensureFirewall(conf *config, subnets []*net.IPNet) error {
	for _, proto := range []iptables.Protocol{iptables.ProtocolIPv4, iptables.ProtocolIPv6} {
		var family []*net.IPNet
		for _, s := range subnets {
			if protoOf(s.IP) == proto {
				family = append(family, s)
			}
		}
		if len(family) == 0 {
			continue
		}
		fw, err := newFirewall(proto)
		if err != nil {
			return err
		}
		var masq []*net.IPNet
		if conf.IPMasq {
			masq = family
		}
		if err := fw.ensureBridgeRules(conf.Bridge, masq); err != nil {
			return fmt.Errorf("firewall rules of bridge %q: %w", conf.Bridge, err)
		}
	}
	return nil
}
