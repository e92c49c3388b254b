// Package ipvs is the IPVS backend of mesh.Balancer, for kernels with IP_VS: every VIP and every
// published port with backends is an IPVS firewall-mark service in NAT (masquerade) mode over
// its backends, scheduled round robin ("rr") or, with mesh.Hash, by source hash ("sh"). A small
// nftables table ("shoal-ipvs" unless Config.Table says otherwise) gives packets to a VIP, or to
// a published port on one of the node's addresses, their service's mark before IPVS sees them;
// it also SNATs ingress connections to State.SNAT and refuses connections to VIPs and ports
// without backends (no service: the reject mark). It works in the network namespace of the
// calling thread.
//
// The package imports mesh, mesh/nft (to describe the mark table's rules the same way),
// github.com/moby/ipvs, github.com/google/nftables and golang.org/x/sys/unix.
//
// # Marks
//
// A mark is a kind (bits 24..27: VIP, host port, ingress port) and an ID. A VIP or port keeps its
// mark across Syncs and restarts — marks are read back from the mark table's maps, whose element
// comments also keep the services' labels — so its IPVS service and the connections IPVS tracks
// for it survive every change but a change of kind (mode, or backends coming and going).
//
// # Changes
//
// IPVS has no transactions. Sync, Update and Repair change only the VIPs and ports that differ,
// in this order: new IPVS services and destinations; then the mark table in one nftables batch;
// then the destinations and services that go. Update takes the change alone (a mesh.Update),
// checks it against a mesh.Index of the applied State and plans the VIPs and ports it names
// only; Sync and Repair compare whole States. The first Sync reads the kernel first, as Repair
// does.
// Sync sets net.ipv4.vs.conntrack (so that the nat chain can SNAT IPVS connections and bridged
// replies are un-NATed) and net.ipv4.vs.expire_nodest_conn.
//
// Unlike mesh/nft, it does not yet translate the source of the two clients whose answer would
// not come back: a process of the node itself reaching a VIP whose backend is on another node,
// and a task whose VIP picked the task itself.
//
// The caller's duties are those of mesh.Balancer (see package mesh). Use mesh/backend to choose
// this backend only where Available reports IPVS.
package ipvs
