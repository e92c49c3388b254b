// Command shoal-ipam is shoal's CNI IPAM plugin. It never chooses an address:
// the manager's allocator owns every address, and the agent passes the task's
// addresses to the plugin chain in runtimeConfig.ips (or args.cni.ips, or
// CNI_ARGS IP=...). shoal-ipam checks that each address lies inside one of the
// network's configured subnets and returns it with that subnet's gateway and
// the configured routes.
//
// Because nothing is held, DEL and GC have nothing to free and STATUS has
// nothing to wait for. The plugin imports only the CNI libraries.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    cmdAdd,
		Check:  cmdCheck,
		Del:    cmdDel,
		GC:     cmdGC,
		Status: cmdStatus,
	}, version.PluginSupports("0.4.0", "1.0.0", "1.1.0"), "CNI plugin shoal-ipam (addresses chosen by the shoal manager)")
}
