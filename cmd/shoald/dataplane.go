package main

// This file owns the node's dataplane setup: its data-path address (the VXLAN tunnel end other
// nodes reach it at), the networks' MTU derived from the underlay's, and the dataplane controller
// that programs the overlay from the endpoint views the agent receives.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/shoal/shoal/agent/dataplane"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/overlay"
)

// vxlanOverhead is what VXLAN over IPv4 adds to a frame: outer IPv4 (20), UDP (8), VXLAN (8)
// and the inner Ethernet header (14).
const vxlanOverhead = 50

// dataPathAddr is the node's VXLAN tunnel address: --data-path-addr, else the host of
// --advertise-addr (or --listen-remote-api) when it names one, else the source address this
// host uses towards the first manager it knows. Invalid when none can be found (a node with no
// manager to route to yet).
func (c *nodeConfig) dataPathAddr(managers []string) (netip.Addr, error) {
	if c.dataPathAddrFlag != "" {
		a, err := netip.ParseAddr(c.dataPathAddrFlag)
		if err != nil || !a.Is4() || a.IsUnspecified() {
			return netip.Addr{}, fmt.Errorf("--data-path-addr: %q is not an IPv4 address of this node", c.dataPathAddrFlag)
		}
		return a, nil
	}
	if ap, err := netip.ParseAddrPort(c.advertise()); err == nil && ap.Addr().Is4() && !ap.Addr().IsUnspecified() {
		return ap.Addr(), nil
	}
	for _, m := range managers {
		// A UDP "connection" sends nothing; it only asks the kernel for a route.
		conn, err := net.Dial("udp4", m)
		if err != nil {
			continue
		}
		la, _ := conn.LocalAddr().(*net.UDPAddr)
		conn.Close()
		if la != nil {
			if a, ok := netip.AddrFromSlice(la.IP); ok && !a.Unmap().IsUnspecified() {
				return a.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, nil
}

// underlayMTU is the MTU of the link holding addr, 0 if none does.
func underlayMTU(addr netip.Addr) int {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 0
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil {
				return l.Attrs().MTU
			}
		}
	}
	return 0
}

// networkMTUFor is the MTU of the networks' interfaces: --network-mtu when set, else the
// underlay's less VXLAN's overhead (1450 on a 1500-byte underlay, and when the underlay is
// not known).
func (c *nodeConfig) networkMTUFor(vtep netip.Addr) int {
	if c.networkMTU != 0 {
		return c.networkMTU
	}
	if mtu := underlayMTU(vtep); mtu > vxlanOverhead+68 {
		return mtu - vxlanOverhead
	}
	return 1500 - vxlanOverhead
}

// newDataplane returns the controller that programs the node's overlay at vtep, nil when the node
// has no data-path address other nodes could reach (none, or a loopback one: a single-host
// cluster); its tasks then reach only the tasks on their own node, and it says so.
func newDataplane(vtep netip.Addr, mtu int, m nodeMesh, repair time.Duration, log *slog.Logger) (*dataplane.Controller, error) {
	if !vtep.IsValid() || vtep.IsLoopback() {
		log.Warn("no data-path address other nodes can reach (set --data-path-addr): this node's tasks are not connected to other nodes", "data_path_addr", vtep)
		return nil, nil
	}
	ov, err := overlay.New(overlay.Config{LocalVTEP: vtep, Log: log})
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	cfg := dataplane.Config{LocalVTEP: vtep, Overlay: ov, MTU: mtu, RepairPeriod: repair, Log: log}
	if m.balancer != nil {
		cfg.Balancer, cfg.Bridges = m.balancer, dataplane.NodeBridges()
		if m.dns != nil {
			cfg.DNS = m.dns
		}
	}
	return dataplane.New(cfg), nil
}

// dataplaneState is the agent's Dataplane: the overlay as the kernel has it; nil without one.
func (e nodeExecutor) dataplaneState() func(context.Context, []string) ([]*api.OverlayKernelState, error) {
	if e.dp == nil {
		return nil
	}
	return func(_ context.Context, ids []string) ([]*api.OverlayKernelState, error) { return e.dp.Read(ids) }
}

// runDataplane programs the overlay until ctx ends.
func (e nodeExecutor) runDataplane(ctx context.Context) {
	if e.dp != nil {
		e.dp.Run(ctx)
	}
}
