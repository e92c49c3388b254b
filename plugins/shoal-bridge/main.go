// Command shoal-bridge is shoal's CNI plugin for a network's node-local bridge.
//
// ADD makes sure the network's bridge exists in the node's namespace, is up and
// holds each subnet's gateway address, adds the bridge's firewall rules (own
// chains, so Docker's FORWARD DROP policy stays in force for everything else),
// creates a veth pair whose host end is named after the attachment
// (containerID, ifname) and enslaved to the bridge, and moves the other end
// into the container's namespace, configured with the addresses the IPAM
// plugin (shoal-ipam) returns. DEL deletes the host end by its derived name, so
// it needs neither the namespace nor a cached result. CHECK compares the node
// and the namespace with the previous result, STATUS says whether the node can
// serve ADDs, and GC deletes the host ends of attachments the runtime no longer
// lists and the firewall rules of bridges that are gone.
//
// Bridge and firewall changes are serialised across concurrent invocations by
// a file lock (see nodelock.go). The plugin imports only the CNI libraries,
// netlink and go-iptables.
package main

import (
	"log/slog"
	"os"
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

func init() {
	// Namespace switches apply to one OS thread; keep main on the thread
	// group leader so the plugin's own namespace stays the node's.
	runtime.LockOSThread()
}

func main() {
	// stdout carries the CNI result; logs go to stderr, which runtimes keep.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("plugin", "shoal-bridge"))
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    cmdAdd,
		Check:  cmdCheck,
		Del:    cmdDel,
		GC:     cmdGC,
		Status: cmdStatus,
	}, version.PluginSupports("0.4.0", "1.0.0", "1.1.0"), "CNI plugin shoal-bridge (shoal's node-local bridge networks)")
}
