// This file holds CHECK: it compares what ADD set up (the bridge, the host
// veth, the container interface with its addresses and routes) with the
// configuration and the previous result, and reports every difference it
// finds, each saying what is there and what should be.

package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/shoal/shoal/overlay"
	"github.com/vishvananda/netlink"
)

func cmdCheck(args *skel.CmdArgs) error {
	conf, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	prev, err := conf.prevResult()
	if err != nil {
		return err
	}
	mac, err := conf.runtimeMAC()
	if err != nil {
		return err
	}
	if err := ipam.ExecCheck(conf.IPAM.Type, args.StdinData); err != nil {
		return err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", args.Netns, err)
	}
	defer netns.Close()

	var d diffs
	hostName := hostVethName(args.ContainerID, args.IfName)
	br := checkBridge(&d, conf, prev)
	peerIndex := checkHostVeth(&d, conf, hostName, br, prev)
	checkContainer(&d, conf, netns, args.IfName, hostName, peerIndex, mac, prev)
	return d.err(fmt.Sprintf("container %s interface %s", args.ContainerID, args.IfName))
}

// diffs collects what CHECK found different.
type diffs struct{ list []string }

func (d *diffs) addf(format string, a ...any) { d.list = append(d.list, fmt.Sprintf(format, a...)) }

func (d *diffs) err(what string) error {
	if len(d.list) == 0 {
		return nil
	}
	return fmt.Errorf("shoal-bridge: check of %s: %s", what, strings.Join(d.list, "; "))
}

// checkBridge checks the bridge and returns it, or nil when it is missing.
func checkBridge(d *diffs, conf *config, prev *current.Result) *netlink.Bridge {
	if findInterface(prev, conf.Bridge, "") == nil {
		d.addf("previous result does not list bridge %q", conf.Bridge)
	}
	link, err := netlinksafe.LinkByName(conf.Bridge)
	if err != nil {
		d.addf("bridge %q: %v", conf.Bridge, err)
		return nil
	}
	br, ok := link.(*netlink.Bridge)
	if !ok {
		d.addf("%q is a %s device, not a bridge", conf.Bridge, link.Type())
		return nil
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		d.addf("bridge %q is down", conf.Bridge)
	}
	if mtu := br.Attrs().MTU; mtu != conf.MTU {
		d.addf("bridge %q has MTU %d, want %d", conf.Bridge, mtu, conf.MTU)
	}
	held, err := netlinksafe.AddrList(br, netlink.FAMILY_ALL)
	if err != nil {
		d.addf("list addresses of bridge %q: %v", conf.Bridge, err)
		return br
	}
	for _, gw := range gatewayAddrs(prev.IPs) {
		if err := overlay.HoldsAddr(held, gw); err != nil {
			d.addf("bridge %q lacks gateway address: %v", conf.Bridge, err)
		}
	}
	return br
}

// checkHostVeth checks the host end and returns the ifindex of its peer in
// the container's namespace, or 0 when it could not be read.
func checkHostVeth(d *diffs, conf *config, name string, br *netlink.Bridge, prev *current.Result) int {
	if findInterface(prev, name, "") == nil {
		d.addf("previous result does not list host veth %q", name)
	}
	link, err := netlinksafe.LinkByName(name)
	if err != nil {
		d.addf("host veth %q: %v", name, err)
		return 0
	}
	if _, ok := link.(*netlink.Veth); !ok {
		d.addf("host interface %q is a %s device, not a veth", name, link.Type())
		return 0
	}
	if br != nil && link.Attrs().MasterIndex != br.Attrs().Index {
		d.addf("host veth %q is not a port of bridge %q", name, conf.Bridge)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		d.addf("host veth %q is down", name)
	}
	if mtu := link.Attrs().MTU; mtu != conf.MTU {
		d.addf("host veth %q has MTU %d, want %d", name, mtu, conf.MTU)
	}
	if info, err := netlinksafe.LinkGetProtinfo(link); err != nil {
		d.addf("read bridge port settings of host veth %q: %v", name, err)
	} else if info.Hairpin != conf.hairpin {
		d.addf("host veth %q has hairpin %s, want %s", name, onOff(info.Hairpin), onOff(conf.hairpin))
	}
	_, peerIndex, err := ip.GetVethPeerIfindex(name)
	if err != nil {
		d.addf("peer of host veth %q: %v", name, err)
		return 0
	}
	return peerIndex
}

// checkContainer checks the container interface, its addresses and routes.
func checkContainer(d *diffs, conf *config, netns ns.NetNS, ifName, hostName string, peerIndex int, runtimeMAC net.HardwareAddr, prev *current.Result) {
	want := findInterface(prev, ifName, netns.Path())
	if want == nil {
		d.addf("previous result has no interface %q in sandbox %s", ifName, netns.Path())
		return
	}
	err := netns.Do(func(ns.NetNS) error {
		link, err := netlinksafe.LinkByName(ifName)
		if err != nil {
			d.addf("container interface %q in netns %s: %v", ifName, netns.Path(), err)
			return nil
		}
		if peerIndex != 0 && link.Attrs().Index != peerIndex {
			d.addf("container interface %q is not the peer of host veth %q", ifName, hostName)
		}
		mac := link.Attrs().HardwareAddr.String()
		if want.Mac != "" && !strings.EqualFold(mac, want.Mac) {
			d.addf("container interface %q has MAC %s, want %s", ifName, mac, want.Mac)
		} else if runtimeMAC != nil && !strings.EqualFold(mac, runtimeMAC.String()) {
			d.addf("container interface %q has MAC %s, want %s (runtimeConfig.mac)", ifName, mac, runtimeMAC)
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			d.addf("container interface %q is down", ifName)
		}
		if mtu := link.Attrs().MTU; mtu != conf.MTU {
			d.addf("container interface %q has MTU %d, want %d", ifName, mtu, conf.MTU)
		}
		checkContainerAddrs(d, link, containerIPs(prev, ifName))
		checkContainerRoutes(d, link, prev)
		return nil
	})
	if err != nil {
		d.addf("enter netns %s: %v", netns.Path(), err)
	}
}

func checkContainerAddrs(d *diffs, link netlink.Link, ips []*current.IPConfig) {
	held, err := netlinksafe.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		d.addf("list addresses of container interface %q: %v", link.Attrs().Name, err)
		return
	}
	for _, ipc := range ips {
		if err := overlay.HoldsAddr(held, &ipc.Address); err != nil {
			d.addf("container interface %q: %v", link.Attrs().Name, err)
		}
	}
}

// checkContainerRoutes looks for each route of the previous result on the
// container interface. A route without a gateway is expected via the gateway
// of the first address of its family, which is how ipam.ConfigureIface adds it.
func checkContainerRoutes(d *diffs, link netlink.Link, prev *current.Result) {
	have, err := netlinksafe.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		d.addf("list routes of container interface %q: %v", link.Attrs().Name, err)
		return
	}
	for _, r := range prev.Routes {
		gw := r.GW
		if gw == nil {
			gw = gatewayOfFamily(prev.IPs, r.Dst.IP.To4() != nil)
		}
		if !hasRoute(have, &r.Dst, gw) {
			d.addf("container interface %q lacks route %s", link.Attrs().Name, routeString(&r.Dst, gw))
		}
	}
}

func hasRoute(have []netlink.Route, dst *net.IPNet, gw net.IP) bool {
	for _, h := range have {
		if routeDst(h) == dst.String() && (gw == nil || h.Gw.Equal(gw)) {
			return true
		}
	}
	return false
}

// routeDst is a route's destination in CIDR notation; netlink reports some
// default routes with no destination.
func routeDst(r netlink.Route) string {
	if r.Dst != nil {
		return r.Dst.String()
	}
	if r.Family == netlink.FAMILY_V6 || (r.Gw != nil && r.Gw.To4() == nil) {
		return "::/0"
	}
	return "0.0.0.0/0"
}

func routeString(dst *net.IPNet, gw net.IP) string {
	if gw == nil {
		return dst.String()
	}
	return dst.String() + " via " + gw.String()
}

func gatewayOfFamily(ips []*current.IPConfig, v4 bool) net.IP {
	for _, ipc := range ips {
		if (ipc.Address.IP.To4() != nil) == v4 {
			return ipc.Gateway
		}
	}
	return nil
}

// findInterface returns the result's interface called name in sandbox.
func findInterface(res *current.Result, name, sandbox string) *current.Interface {
	for _, iface := range res.Interfaces {
		if iface.Name == name && iface.Sandbox == sandbox {
			return iface
		}
	}
	return nil
}

// containerIPs returns the result's addresses of the container interface:
// those pointing at it, and those pointing at no interface.
func containerIPs(res *current.Result, ifName string) []*current.IPConfig {
	var ips []*current.IPConfig
	for _, ipc := range res.IPs {
		if ipc.Interface == nil {
			ips = append(ips, ipc)
			continue
		}
		if i := *ipc.Interface; i >= 0 && i < len(res.Interfaces) && res.Interfaces[i].Name == ifName && res.Interfaces[i].Sandbox != "" {
			ips = append(ips, ipc)
		}
	}
	return ips
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
