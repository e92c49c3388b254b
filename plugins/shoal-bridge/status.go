// This file holds STATUS (spec 1.1.0): whether the node can serve ADDs at all.
// shoal-bridge needs the iptables binary and a working netlink socket; without
// either it answers "plugin not available" (code 50), so the runtime holds
// back new sandboxes instead of failing each one.

package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/coreos/go-iptables/iptables"
	"github.com/shoal/shoal/overlay"
)

func cmdStatus(args *skel.CmdArgs) error {
	conf, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	if _, err := newFirewall(iptables.ProtocolIPv4); err != nil {
		return notAvailable(err)
	}
	if _, err := netlinksafe.LinkByName(conf.Bridge); err != nil && !overlay.IsLinkNotFound(err) {
		return notAvailable(err)
	}
	return ipam.ExecStatus(conf.IPAM.Type, args.StdinData)
}

func notAvailable(err error) *types.Error {
	return types.NewError(types.ErrPluginNotAvailable, "shoal-bridge: plugin not available", err.Error())
}
