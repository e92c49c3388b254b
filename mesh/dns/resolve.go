package dns

// This file answers a question from one zone's records, when the name is the zone's; the
// caller forwards the rest. It decides the response code and the answer records, nothing about
// transport.

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// localAnswer is a zone's answer to one question.
type localAnswer struct {
	rcode  int
	answer []dns.RR
}

// resolve answers q from zr; ok is false when the name is not the zone's and must be forwarded.
//
// A name of the zone's that has no address (a dnsrr service, or tasks.<service>, with no running
// task; a slot the service does not have) gets NXDOMAIN. Docker's resolver
// (libnetwork/resolver.go, handleIPQuery) keeps no record for such a name and forwards the query,
// so containers there get the upstream's NXDOMAIN; answering NXDOMAIN here gives them the same
// answer without sending internal service names to the upstream resolvers and without waiting on
// them (or getting SERVFAIL when they are down). The answer carries no SOA, so no cache keeps the
// negative answer (RFC 2308 section 5): the name resolves on the first query after a task starts.
// A name that has addresses but none of the type asked for (AAAA: shoal networks are IPv4 only;
// MX, TXT, ...) gets NOERROR with no answer (NODATA), as in Docker, so that clients asking for
// both A and AAAA use the A answer.
func (zr *zoneRecords) resolve(q dns.Question, ttl uint32) (a localAnswer, ok bool) {
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return a, false
	}
	name := strings.ToLower(q.Name)
	if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
		if ip, isReverse := parseReverse4(name); isReverse {
			if names, found := zr.ptr.Get(ip); found {
				return localAnswer{rcode: dns.RcodeSuccess, answer: ptrRecords(q.Name, names, ttl)}, true
			}
		}
	}
	rec, local := zr.lookup(name)
	switch {
	case !local:
		return a, false
	case rec == nil || len(rec.addrs) == 0:
		return localAnswer{rcode: dns.RcodeNameError}, true
	case q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY:
		return localAnswer{rcode: dns.RcodeSuccess, answer: aRecords(q.Name, rec.ordered(), ttl)}, true
	default:
		return localAnswer{rcode: dns.RcodeSuccess}, true
	}
}

// lookup finds a lower-case fully qualified name; local is true for the zone's names, rec nil
// for <n>.<service> of a slot that service does not have.
func (zr *zoneRecords) lookup(name string) (rec *nameRecord, local bool) {
	first, rest, _ := strings.Cut(name, ".")
	if rest == "" { // one label: <service>.
		svc, found := zr.services.Get(first)
		if !found {
			return nil, false
		}
		return &svc.service, true
	}
	service, tail, _ := strings.Cut(rest, ".")
	if tail != "" { // three labels or more: no name of the zone's
		return nil, false
	}
	svc, found := zr.services.Get(service)
	switch {
	case !found:
		return nil, false
	case first == "tasks":
		return &svc.tasks, true
	case isDecimal(first):
		return svc.slot(slotNumber(first)), true
	}
	return nil, false
}

// slotNumber is the slot a decimal label names; 0 (no slot) when it is not in canonical form
// (a leading zero) or too big.
func slotNumber(label string) uint64 {
	if len(label) > 1 && label[0] == '0' {
		return 0
	}
	n, err := strconv.ParseUint(label, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// ordered returns the addresses for the next answer: rotated by one more place than the last.
func (rec *nameRecord) ordered() []netip.Addr {
	n := len(rec.addrs)
	if rec.turn == nil || n < 2 {
		return rec.addrs
	}
	start := int((rec.turn.Add(1) - 1) % uint64(n))
	out := make([]netip.Addr, 0, n)
	out = append(out, rec.addrs[start:]...)
	return append(out, rec.addrs[:start]...)
}

// aRecords are A records of name (as asked: same case) for addrs.
func aRecords(name string, addrs []netip.Addr, ttl uint32) []dns.RR {
	rrs := make([]dns.RR, len(addrs))
	for i, ip := range addrs {
		b := ip.As4()
		rrs[i] = &dns.A{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
			A:   b[:],
		}
	}
	return rrs
}

// ptrRecords are PTR records of name pointing to targets.
func ptrRecords(name string, targets reverseNames, ttl uint32) []dns.RR {
	rrs := make([]dns.RR, targets.Len())
	for i, target := range targets.list() {
		rrs[i] = &dns.PTR{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl},
			Ptr: target.String(),
		}
	}
	return rrs
}

// parseReverse4 returns the IPv4 address whose reverse name is name ("4.3.2.1.in-addr.arpa.",
// lower case, the bytes in canonical decimal); ok is false for any other name.
func parseReverse4(name string) (ip netip.Addr, ok bool) {
	rest, found := strings.CutSuffix(name, ".in-addr.arpa.")
	if !found {
		return ip, false
	}
	var b [4]byte
	for i := 3; i >= 0; i-- {
		var label string
		if i > 0 {
			label, rest, found = strings.Cut(rest, ".")
			if !found {
				return ip, false
			}
		} else {
			label = rest
		}
		if !isDecimal(label) || len(label) > 1 && label[0] == '0' {
			return ip, false
		}
		n, err := strconv.ParseUint(label, 10, 8)
		if err != nil {
			return ip, false
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

// isDecimal reports whether s is a non-empty string of ASCII digits.
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
