package dns

// This file holds the plain values the caller feeds the server (Config, Zone, Service) and the
// Answer that Lookup returns.

import (
	"log/slog"
	"net/netip"
)

// Service is one service attached to a network, as this network sees it.
type Service struct {
	// Name is the service's name, e.g. "web": a DNS label (letters, digits, '-' and '_', at most
	// 63 characters). Names are case-insensitive: "Web" and "web" are the same service.
	Name string
	// VIP is the service's virtual IP on this network in endpoint mode vip; the zero Addr in
	// endpoint mode dnsrr, where <service> answers the task IPs instead.
	VIP netip.Addr
	// Tasks are the IPs on this network of the service's RUNNING tasks.
	Tasks []netip.Addr
	// Slots maps a replicated service's slot number (from 1) to that slot's sticky IP on this
	// network, answered for <slot>.<service>.
	Slots map[uint64]netip.Addr
}

// Zone is one network's records and where its containers reach the server.
type Zone struct {
	// Network is the network's ID; it keys Lookup and Records.
	Network string
	// Name is the network's name, for netctl's output.
	Name string
	// Listen is the network's gateway address, where its containers send queries; the zero
	// Addr means the network's records are kept (for Lookup) but nothing listens for them.
	Listen netip.Addr
	// Services are the network's services.
	Services []Service
}

// Config configures a Server.
type Config struct {
	// Port is the port listened on at every Zone.Listen address, UDP and TCP; 0 means 53.
	Port int
	// Upstreams are the resolvers other names are forwarded to, as "ip:port", tried in order.
	// None means other names get SERVFAIL.
	Upstreams []string
	// TTL is the TTL, in seconds, of local answers; 0 means 1, so that answers follow changes.
	TTL uint32
	// Log receives the server's events; nil discards them.
	Log *slog.Logger
}

// Answer is what a query got: the addresses of its A and AAAA answer records, the targets of
// its PTR records (fully qualified, as on the wire), its response code (RcodeSuccess,
// RcodeNameError, ... of github.com/miekg/dns) and whether it was forwarded upstream.
type Answer struct {
	Addrs     []netip.Addr
	Names     []string
	Rcode     int
	Forwarded bool
}
