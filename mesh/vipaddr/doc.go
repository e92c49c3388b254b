// Package vipaddr keeps each shoal network's service VIPs as /32 addresses on the network's bridge
// in a node's network namespace. Holding a VIP makes the node answer its tasks' ARP requests for
// it, so packets to a VIP reach the node's IP layer, where the load balancer (mesh/nft or
// mesh/ipvs) translates them to a backend; the VXLAN device answers ARP only for the tasks it
// forwards to, so each node answers for the VIP itself and no request crosses the overlay.
//
// A bridge's /32 IPv4 addresses are its VIPs: its gateway addresses carry their subnet's prefix
// length. The package takes plain values, imports nothing of shoal, and talks to the kernel through
// github.com/vishvananda/netlink in the calling thread's network namespace.
package vipaddr
