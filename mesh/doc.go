// Package mesh holds the plain values a node's load balancer is programmed with — service VIPs
// and their backends, published ports and theirs, the node's SNAT address — and the Balancer
// interface its backends implement: mesh/nft (nftables, every kernel) and mesh/ipvs (IPVS, where
// the kernel has it), chosen by mesh/backend. The embedded DNS server is mesh/dns.
//
// The package has no kernel code and imports only the standard library.
//
// # Contract
//
// The caller (the node agent) has these duties, in order:
//
//  1. Make each VIP an address of the node (a /32 on its network's bridge), and enable
//     net.ipv4.ip_forward and net.bridge.bridge-nf-call-iptables, so that packets to a VIP reach
//     the node's IP layer and bridged replies from a backend pass conntrack to be un-NATed.
//  2. Open one Balancer per node (mesh/backend.Open) and call it from inside the node's network
//     namespace: a process that lives there, or a thread locked to it for each call.
//  3. Call Sync with the whole State when the whole view is new (an agent's start, a new
//     stream): every VIP with the RUNNING task IPs of its service on that network (any node),
//     every published port with its backends (any node for Ingress, this node's tasks for
//     Host), and SNAT, the node's data-path address (required when an Ingress port exists). On a change of some services or their tasks,
//     call Update with those services' VIPs and ports, and the ones they no longer have: its cost
//     follows the change, not the number of services. When Update fails (ErrNoState after a
//     failure, a refused input), Sync the whole State.
//  4. Call Repair periodically: it reads the kernel and fixes what was changed by hand.
//  5. Call Remove when the node leaves the cluster.
//
// Inspect and Read never change anything; they serve `netctl check`, `netctl vip ls` and
// `netctl ingress ls`.
//
// # What a VIP does
//
// A VIP balances every port and protocol: a connection to VIP:p goes to one backend's address at
// port p, destination NAT only, so the backend sees the client's own address. The nftables
// backend makes two exceptions, for clients whose answer would not come back otherwise: the node
// itself (its connection leaves from the SNAT address) and a task whose VIP picked the task
// itself (masqueraded to the bridge's address). A VIP without
// backends refuses connections (TCP reset, ICMP port unreachable otherwise) and is never
// delivered to the node's own sockets.
package mesh
