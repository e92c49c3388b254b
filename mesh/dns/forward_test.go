package dns

// Tests of forwarding through Lookup, which forwards from the calling goroutine as a query's
// handler does; the fake upstreams listen on 127.0.0.1 of the test process's namespace.

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func TestLookupForwards(t *testing.T) {
	good := startUpstream(t, false)
	failing := startUpstream(t, true)
	down := startUpstream(t, false)
	down.stop()

	bigAddrs := make([]netip.Addr, upstreamBigCount)
	for i := range bigAddrs {
		bigAddrs[i] = netip.AddrFrom4([4]byte{198, 18, 100, byte(i + 1)})
	}
	cases := []struct {
		name      string
		upstreams []*fakeUpstream
		qname     string
		rcode     int
		addrs     []netip.Addr
	}{
		{"answer relayed", []*fakeUpstream{good}, "example.test", dns.RcodeSuccess, []netip.Addr{upstreamAddr}},
		{"NXDOMAIN relayed", []*fakeUpstream{good}, "nothing.test", dns.RcodeNameError, nil},
		{"truncated over UDP, asked again over TCP", []*fakeUpstream{good}, "big.test", dns.RcodeSuccess, bigAddrs},
		{"SERVFAIL from the only upstream", []*fakeUpstream{good}, "servfail.test", dns.RcodeServerFailure, nil},
		{"the next upstream after one that is down", []*fakeUpstream{down, good}, "example.test", dns.RcodeSuccess, []netip.Addr{upstreamAddr}},
		{"the next upstream after a SERVFAIL", []*fakeUpstream{failing, good}, "example.test", dns.RcodeSuccess, []netip.Addr{upstreamAddr}},
		{"every upstream fails", []*fakeUpstream{failing, down}, "example.test", dns.RcodeServerFailure, nil},
		{"the upstream is down", []*fakeUpstream{down}, "example.test", dns.RcodeServerFailure, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var upstreams []string
			for _, u := range tc.upstreams {
				upstreams = append(upstreams, u.addr.String())
			}
			s := newTestServer(t, Config{Upstreams: upstreams})
			if err := s.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
				t.Fatal(err)
			}
			goodBefore := good.queries.Load()
			got, err := s.Lookup(testNetwork, tc.qname, dns.TypeA)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Forwarded || got.Rcode != tc.rcode || !slices.Equal(got.Addrs, tc.addrs) {
				t.Errorf("got forwarded=%v %s %v; want forwarded %s %v", got.Forwarded,
					dns.RcodeToString[got.Rcode], got.Addrs, dns.RcodeToString[tc.rcode], tc.addrs)
			}
			if slices.Contains(tc.upstreams, good) && good.queries.Load() == goodBefore {
				t.Errorf("the answering upstream got no query")
			}
		})
	}
}

// Local names never reach the upstreams, not even those that get NXDOMAIN.
func TestLocalNamesAreNotForwarded(t *testing.T) {
	u := startUpstream(t, false)
	s := newTestServer(t, Config{Upstreams: []string{u.addr.String()}})
	if err := s.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range nameCases {
		if tc.forward {
			continue
		}
		got, err := s.Lookup(testNetwork, tc.name, tc.qtype)
		if err != nil {
			t.Fatal(err)
		}
		if got.Forwarded {
			t.Errorf("%s %s was forwarded", tc.name, dns.TypeToString[tc.qtype])
		}
	}
	if n := u.queries.Load(); n != 0 {
		t.Errorf("the upstream got %d queries for local names", n)
	}
}
