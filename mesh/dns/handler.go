package dns

// This file turns a query into its response: from the zone of the listener it arrived on, or
// from the upstreams; and writes the response in the size the transport allows. Lookup goes
// through respond too, so it gets exactly what a query would.

import (
	"context"
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// ednsUDPSize is the UDP payload size advertised in local answers to EDNS0 queries: the DNS
// flag day 2020 value, which crosses common paths unfragmented.
const ednsUDPSize = 1232

// handler answers the queries arriving on the listener of address listen, from the zone the
// current generation gives that address. ctx ends when the listener stops.
func (s *Server) handler(listen netip.Addr) func(ctx context.Context, overUDP bool) dns.Handler {
	return func(ctx context.Context, overUDP bool) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			zone := s.current.Load().byListen[listen]
			resp, _ := s.respond(ctx, zone, req, clientAddr(w.RemoteAddr()))
			// A UDP answer must fit the client's buffer: one cut to size says so with the TC
			// bit, and the client asks again over TCP. A TCP answer must fit in 64 KiB.
			if overUDP {
				resp.Truncate(clientUDPSize(req))
			} else {
				resp.Truncate(dns.MaxMsgSize)
			}
			if err := w.WriteMsg(resp); err != nil {
				s.log.Debug("write DNS response", "listen", listen, "client", w.RemoteAddr().String(), "err", err)
			}
		})
	}
}

// respond is the response to req for zone (nil: the listener no longer answers for any), asked by
// client (the zero Addr when unknown); forwarded says whether the upstreams were asked. A name the
// zone does not hold is looked up in the zones of the client's other networks (SetClients) before
// it is forwarded.
func (s *Server) respond(ctx context.Context, zone *zone, req *dns.Msg, client netip.Addr) (resp *dns.Msg, forwarded bool) {
	switch {
	case zone == nil:
		return reply(req, dns.RcodeRefused), false
	case req.Opcode != dns.OpcodeQuery:
		return reply(req, dns.RcodeNotImplemented), false
	case len(req.Question) != 1:
		return reply(req, dns.RcodeFormatError), false
	}
	if local, ok := s.resolveFor(zone, client, req.Question[0]); ok {
		resp = reply(req, local.rcode)
		resp.Authoritative = true
		resp.Answer = local.answer
		if req.IsEdns0() != nil {
			resp.SetEdns0(ednsUDPSize, false)
		}
		return resp, false
	}
	resp, err := s.fwd.forward(ctx, req)
	if err != nil {
		s.log.Debug("forward DNS query", "network", zone.network, "network_name", zone.name, "name", req.Question[0].Name,
			"type", dns.TypeToString[req.Question[0].Qtype], "err", err)
		return reply(req, dns.RcodeServerFailure), true
	}
	resp.Compress = true
	return resp, true
}

// resolveFor answers q from zone, or else from the first zone of the client's other networks that
// holds the name; ok is false when none does (the name is forwarded).
func (s *Server) resolveFor(zone *zone, client netip.Addr, q dns.Question) (localAnswer, bool) {
	if local, ok := zone.records.Load().resolve(q, s.cfg.TTL); ok {
		return local, true
	}
	clients := s.clients.Load()
	if clients == nil || !client.IsValid() {
		return localAnswer{}, false
	}
	zones := s.current.Load().zones
	for _, id := range (*clients)[client] {
		if other := zones[id]; other != nil && other != zone {
			if local, ok := other.records.Load().resolve(q, s.cfg.TTL); ok {
				return local, true
			}
		}
	}
	return localAnswer{}, false
}

// clientAddr is the address a query came from; the zero Addr when it is not an IP address.
func clientAddr(a net.Addr) netip.Addr {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	}
	return ap.Addr().Unmap()
}

// reply is an empty response to req with rcode.
func reply(req *dns.Msg, rcode int) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetRcode(req, rcode)
	resp.RecursionAvailable = true
	resp.Compress = true
	return resp
}

// clientUDPSize is the largest UDP answer the sender of req takes: its EDNS0 buffer size, or
// 512 bytes without EDNS0 (RFC 1035).
func clientUDPSize(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil {
		return max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

// answerOf is the Answer a response carries.
func answerOf(resp *dns.Msg, forwarded bool) Answer {
	a := Answer{Rcode: resp.Rcode, Forwarded: forwarded}
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(rr.A); ok {
				a.Addrs = append(a.Addrs, ip.Unmap())
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(rr.AAAA); ok {
				a.Addrs = append(a.Addrs, ip)
			}
		case *dns.PTR:
			a.Names = append(a.Names, rr.Ptr)
		}
	}
	return a
}
