// Package nft is the nftables backend of mesh.Balancer: it programs a node's service VIPs and
// published ports into one table of family ip ("shoal" unless Config.Table says otherwise),
// through github.com/google/nftables in the network namespace of its first call's thread, whose
// netlink sockets it keeps (conn.go says why). It imports
// mesh, the nftables and netlink libraries and golang.org/x/sys/unix; nothing else of shoal.
//
// # The table
//
//	map vips          ipv4_addr : verdict                 VIP → goto vip-<VIP>
//	set vip-addrs     ipv4_addr                           every VIP
//	map vip-backends  ipv4_addr . slot : ipv4_addr        (VIP, slot) → backend
//	map ports         inet_proto . inet_service : verdict (protocol, published) → goto port-<p>-<n>
//	map port-backends inet_proto . inet_service . slot : ipv4_addr . inet_service
//	set hairpin       ipv4_addr . ipv4_addr               every VIP backend, twice
//
//	chain prerouting, output (nat, dstnat)
//	        [output, with State.SNAT: ip daddr @vip-addrs  meta mark set mark | SNATMark]
//	        ip daddr vmap @vips
//	        fib daddr type local meta l4proto . th dport vmap @ports
//	chain postrouting (nat, srcnat)
//	        meta mark & SNATMark == SNATMark  meta mark set mark & ~SNATMark  snat to State.SNAT
//	        ip saddr . ip daddr @hairpin  masquerade
//	chain input (filter)
//	        ct state new, to a VIP or with the reject mark: reject (TCP reset, else ICMP port
//	        unreachable)
//	chain vip-10.20.0.2    goto pick-vip-3, comment "shoal vip service=… name=… network=…"
//	chain port-tcp-8080    [ingress: set the SNAT mark] goto pick-port-2, comment "shoal port …"
//	chain pick-vip-3       dnat to ip daddr . numgen random mod 3 map @vip-backends
//	chain pick-port-2      dnat to meta l4proto . th dport . numgen random mod 2 map @port-backends
//
// Each VIP and each published port has its own chain, holding its service's labels in a rule
// comment, and its own elements in the maps; a VIP or port without backends sets the reject mark
// instead. The chains that pick a backend are shared by every VIP (or port) with the same number
// of backends, so the backend maps are looked up from a few rules, not one per service (see
// rules.go for why that matters). With Config.Selection mesh.Hash the slot is a jhash of the
// client's address instead of a random number: a client keeps its backend.
//
// A VIP's backend sees the client's own address, with two exceptions that would otherwise not
// get an answer. A connection of the node's own processes (output) leaves from State.SNAT, the
// node's data-path address: its source would be the VIP or the bridge's gateway, which every
// node holds, so a backend on another node would answer its own node. A task that reaches its
// own VIP and is picked itself gets the connection masqueraded to its bridge's address: it would
// drop a packet from its own.
//
// # Changes
//
// Sync diffs the State against what it last applied and sends one atomic batch holding only the
// objects of the VIPs and ports that changed: a replaced backend is one element deleted and one
// added, in the backend map and in the hairpin set; a change of backend count also replaces the
// rule of that service's chain. Sync's diff visits every VIP and backend (about 1.3 µs a VIP of 10
// backends); Update takes the change alone (a mesh.Update), checks it against a mesh.Index of the
// applied State and builds the objects of the VIPs and ports it names only, so its cost in Go does
// not grow with the number of services (the kernel's commit of any batch still takes longer in a
// table of more chains: about 25 µs more per 1,000 VIPs). A pick chain is kept for as long as a VIP
// or port uses it: the applied table counts its users. The first Sync, and any Sync, Update or
// Repair whose piecewise batch the kernel refuses (the table was changed by hand), rebuilds the
// whole table in one batch: add, delete and add the table, then its content. Repair and Inspect
// read the table back (one dump each for chains, rules and each map) and compare it, object by
// object, with what the State needs.
//
// The caller's duties are those of mesh.Balancer (see package mesh); the Balancer needs
// CAP_NET_ADMIN and, for large batches, to raise its netlink socket buffers (SO_SNDBUFFORCE).
package nft
