// Package dns is the embedded DNS server every shoal node runs for its containers. A container's
// /etc/resolv.conf names its network's gateway as nameserver (with options ndots:0 and no search
// line); the server listens on each network's gateway address, port 53, UDP and TCP, and answers
// from that network's records:
//
//	<service>         the service's VIP (endpoint mode vip) or all its running task IPs (dnsrr),
//	tasks.<service>   all its running task IPs,
//	<slot>.<service>  the sticky IP of one slot of a replicated service,
//
// case-insensitively, with the TTL of Config.TTL (1 s by default, so answers follow changes).
// Lists of task IPs rotate by one on every answer (DNS round-robin). A local name asked for AAAA
// or another type gets NOERROR with no answers; a local name with no address gets NXDOMAIN. PTR
// queries for a service's VIP or task IPs are answered locally. A task on several networks (its
// resolv.conf names each network's gateway, and its resolver asks the first) also gets the names
// of its other networks, from any of their listeners (SetClients). Every other name is forwarded
// to Config.Upstreams and the answer relayed as it is; SERVFAIL when none answers.
//
// The package takes plain values and imports only the standard library and
// github.com/miekg/dns.
//
// # Contract
//
// The caller (the node agent) has these duties, in order:
//
//  1. Build one Server per node with New, giving it the upstream resolvers (usually
//     UpstreamsFromResolvConf of the host's resolv.conf, minus the gateway addresses).
//  2. When networks come or go (or a network's name or gateway changes), call Sync with every
//     network's whole Zone. Sync replaces all records at once: a query either sees the old
//     records or the new ones, and the next query after Sync returns sees the new ones. Sync
//     opens UDP and TCP listeners for new Zone.Listen addresses and closes those no zone names
//     any more. It opens them in the network namespace of the calling thread: call it from a
//     process living in the node's namespace, or from a thread locked to it. Listeners bind
//     with IP_FREEBIND, so a gateway address may be listened on before its bridge carries it.
//     Sync costs what all the zones hold.
//  3. When services or their running tasks change, call Update for each network they are on,
//     with the services whose records changed and the names of those that left; Sync is right
//     too, and slower. Update costs what the services it names hold, however big the network:
//     it is meant for every task that starts or stops. A query sees each Update whole or not
//     at all. Update touches no listener, so it can be called from any namespace.
//  4. When the node's tasks on several networks change, call SetClients with each such task's
//     addresses and its other networks.
//  5. Call Close when the node stops serving DNS.
//
// Forwarded queries leave from the process's network namespace (the handlers run on ordinary
// goroutines), which is why a loopback upstream such as systemd-resolved's 127.0.0.53 works
// when the process lives in the host's namespace.
//
// Lookup answers exactly what a query arriving on a network's listener would get, Records lists
// every local name with its addresses and Listening the open listeners: `netctl dns` reads them.
package dns
