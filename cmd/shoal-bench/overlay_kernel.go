package main

// This file owns the overlay benchmark's kernel reference: the two paths the throughput rounds
// measure through shoal (a task to a task on another node over VXLAN, and to a task on its own
// node's bridge), built a second time on the same bed with ip(8) and bridge(8) alone — a bridge
// and a VXLAN device per node, static forwarding and neighbour entries, no shoald, no netfilter.
// Measured in the same rounds with the same sender and receiver, it shows how far this machine's
// kernel VXLAN path is from its bridge before shoal adds anything.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/shoal/shoal/internal/testbed"
	"github.com/shoal/shoal/overlay"
)

// Bed nodes of the kernel reference: two nodes, and three namespaces standing for tasks (a and
// c on the first node, b on the second). Nodes 1-2 run the throughput cluster, 4-6 the
// convergence one.
const (
	kernelNodeA, kernelNodeB              = 7, 8
	kernelTaskA, kernelTaskB, kernelTaskC = 9, 10, 11
	kernelVNI                             = "42"
	kernelBridge, kernelVXLAN             = "kbr0", "kvx0"
)

// kernelPaths are the reference's task namespaces and the addresses to stream to.
type kernelPaths struct {
	a, b, c  string // namespace paths
	ipB, ipC string
}

// kernelTask is one namespace standing for a task: its bed node, its node's, and its address.
type kernelTask struct {
	node, on int
	ip, mac  string
}

// buildKernelReference makes the reference on bed with the tasks' MTU, on subnet 198.19.248.0/24.
func buildKernelReference(ctx context.Context, bed *testbed.Bed, mtu int) (kernelPaths, error) {
	m := strconv.Itoa(mtu)
	for _, n := range []int{kernelNodeA, kernelNodeB, kernelTaskA, kernelTaskB, kernelTaskC} {
		if err := bed.AddNode(n); err != nil {
			return kernelPaths{}, err
		}
	}
	for _, n := range []int{kernelNodeA, kernelNodeB} {
		path := bed.NodeNSPath(n)
		// No netfilter on bridged frames: a namespace starts with it on when br_netfilter is
		// loaded (shoald turns it on in its own nodes); -e: without br_netfilter there is
		// nothing to turn off.
		if err := runIn(ctx, path, "sysctl", "-e", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0"); err != nil {
			return kernelPaths{}, err
		}
		for _, argv := range [][]string{
			{"ip", "link", "add", "name", kernelBridge, "mtu", m, "type", "bridge"},
			{"ip", "link", "set", kernelBridge, "up"},
			{"ip", "link", "add", "name", kernelVXLAN, "mtu", m, "type", "vxlan", "id", kernelVNI,
				"local", bed.NodeAddr(n).String(), "dstport", "4789", "nolearning"},
			{"ip", "link", "set", kernelVXLAN, "master", kernelBridge, "up"},
		} {
			if err := runIn(ctx, path, argv...); err != nil {
				return kernelPaths{}, err
			}
		}
	}
	tasks := map[int]kernelTask{
		kernelTaskA: {node: kernelTaskA, on: kernelNodeA, ip: "198.19.248.1", mac: "02:42:c6:13:f8:01"},
		kernelTaskB: {node: kernelTaskB, on: kernelNodeB, ip: "198.19.248.2", mac: "02:42:c6:13:f8:02"},
		kernelTaskC: {node: kernelTaskC, on: kernelNodeA, ip: "198.19.248.3", mac: "02:42:c6:13:f8:03"},
	}
	for _, t := range tasks {
		port := fmt.Sprintf("kv%d", t.node)
		if err := runIn(ctx, bed.NodeNSPath(t.on), "ip", "link", "add", "name", port, "mtu", m, "type", "veth",
			"peer", "name", "eth0", "netns", bed.NodeNS(t.node)); err != nil {
			return kernelPaths{}, err
		}
		if err := runIn(ctx, bed.NodeNSPath(t.on), "ip", "link", "set", port, "master", kernelBridge, "up"); err != nil {
			return kernelPaths{}, err
		}
		path := bed.NodeNSPath(t.node)
		for _, argv := range [][]string{
			{"ip", "link", "set", "eth0", "mtu", m, "address", t.mac, "up"},
			{"ip", "addr", "add", t.ip + "/24", "dev", "eth0"},
		} {
			if err := runIn(ctx, path, argv...); err != nil {
				return kernelPaths{}, err
			}
		}
		// As shoal-bridge does for a task's end of its veth.
		if err := ns.WithNetNSPath(path, func(ns.NetNS) error { return overlay.EnableGRO("eth0") }); err != nil {
			return kernelPaths{}, err
		}
	}
	// a and b know each other across the nodes: each node forwards the other's MAC to the
	// other node's VTEP, and its bridge sends it to the VXLAN port.
	for _, pair := range [][2]kernelTask{{tasks[kernelTaskA], tasks[kernelTaskB]}, {tasks[kernelTaskB], tasks[kernelTaskA]}} {
		local, remote := pair[0], pair[1]
		node := bed.NodeNSPath(local.on)
		for _, argv := range [][]string{
			{"bridge", "fdb", "append", remote.mac, "dev", kernelVXLAN, "dst", bed.NodeAddr(remote.on).String()},
			{"bridge", "fdb", "add", remote.mac, "dev", kernelVXLAN, "master", "static"},
		} {
			if err := runIn(ctx, node, argv...); err != nil {
				return kernelPaths{}, err
			}
		}
		if err := runIn(ctx, bed.NodeNSPath(local.node), "ip", "neigh", "replace", remote.ip, "lladdr", remote.mac, "dev", "eth0"); err != nil {
			return kernelPaths{}, err
		}
	}
	return kernelPaths{
		a: bed.NodeNSPath(kernelTaskA), b: bed.NodeNSPath(kernelTaskB), c: bed.NodeNSPath(kernelTaskC),
		ipB: tasks[kernelTaskB].ip, ipC: tasks[kernelTaskC].ip,
	}, nil
}

// runIn runs argv in the namespace at path, its output in the error.
func runIn(ctx context.Context, path string, argv ...string) error {
	if out, err := testbed.RunIn(ctx, path, argv...); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}
