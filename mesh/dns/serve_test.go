package dns

// Tests over real sockets: each test makes its own network namespace with the gateway addresses
// on a bridge, Syncs from inside it (where the listeners open) and queries from inside it
// with a github.com/miekg/dns client, over UDP and TCP.

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var protocols = []string{"udp", "tcp"}

func TestServeNameForms(t *testing.T) {
	n := newTestNetns(t, gatewayA)
	s := newTestServer(t, Config{})
	syncIn(t, n, s, testZone(gatewayA))
	for _, proto := range protocols {
		for _, tc := range nameCases {
			t.Run(proto+"/"+tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
				resp := queryIn(t, n, proto, gatewayA, dns.Fqdn(tc.name), tc.qtype)
				if resp.Rcode != tc.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
				}
				if got := answerAddrs(resp); !slices.Equal(sorted(got), sorted(tc.addrs)) {
					t.Errorf("addresses %v, want %v", got, tc.addrs)
				}
				var ptrs []string
				for _, rr := range resp.Answer {
					if ptr, ok := rr.(*dns.PTR); ok {
						ptrs = append(ptrs, ptr.Ptr)
					}
					if rr.Header().Name != dns.Fqdn(tc.name) {
						t.Errorf("record %q does not answer %q as it was asked", rr.Header().Name, dns.Fqdn(tc.name))
					}
					if rr.Header().Ttl != 1 {
						t.Errorf("record %s has TTL %d, want the default 1", rr.Header().Name, rr.Header().Ttl)
					}
				}
				if !slices.Equal(ptrs, tc.ptrs) {
					t.Errorf("PTR names %v, want %v", ptrs, tc.ptrs)
				}
				if resp.Authoritative == tc.forward {
					t.Errorf("authoritative %v for a name forwarded=%v", resp.Authoritative, tc.forward)
				}
				if !resp.RecursionAvailable {
					t.Errorf("RA is not set")
				}
			})
		}
	}
}

func TestServeRotates(t *testing.T) {
	n := newTestNetns(t, gatewayA)
	s := newTestServer(t, Config{})
	syncIn(t, n, s, testZone(gatewayA))
	for _, proto := range protocols {
		firsts := map[netip.Addr]bool{}
		for range len(webTasks) {
			resp := queryIn(t, n, proto, gatewayA, "tasks.web.", dns.TypeA)
			got := answerAddrs(resp)
			if !isRotationOf(got, webTasks) {
				t.Fatalf("%s: answer %v is not a rotation of %v", proto, got, webTasks)
			}
			firsts[got[0]] = true
		}
		if len(firsts) != len(webTasks) {
			t.Errorf("%s: %d answers began with only %v", proto, len(webTasks), firsts)
		}
	}
}

func TestServeTTL(t *testing.T) {
	n := newTestNetns(t, gatewayA)
	s := newTestServer(t, Config{TTL: 30})
	syncIn(t, n, s, testZone(gatewayA))
	resp := queryIn(t, n, "udp", gatewayA, "web.", dns.TypeA)
	if len(resp.Answer) != 1 || resp.Answer[0].Header().Ttl != 30 {
		t.Errorf("answer %v, want one record with TTL 30", resp.Answer)
	}
}

// The query right after Sync returns gets the new records: no waiting, no TTL to run out.
func TestServeFollowsSync(t *testing.T) {
	n := newTestNetns(t, gatewayA)
	s := newTestServer(t, Config{})
	zone := testZone(gatewayA)
	syncIn(t, n, s, zone)
	if got := answerAddrs(queryIn(t, n, "udp", gatewayA, "web.", dns.TypeA)); !slices.Equal(got, []netip.Addr{webVIP}) {
		t.Fatalf("web before the change: %v", got)
	}
	for i, vip := range addrs("198.18.53.3", "198.18.53.4", "198.18.53.5") {
		zone.Services[0].VIP = vip
		zone.Services[1].Tasks = dbTasks[:i%2+1]
		syncIn(t, n, s, zone)
		for _, proto := range protocols {
			if got := answerAddrs(queryIn(t, n, proto, gatewayA, "web.", dns.TypeA)); !slices.Equal(got, []netip.Addr{vip}) {
				t.Errorf("change %d over %s: web is %v, want %v", i, proto, got, vip)
			}
			if got := answerAddrs(queryIn(t, n, proto, gatewayA, "db.", dns.TypeA)); !slices.Equal(sorted(got), dbTasks[:i%2+1]) {
				t.Errorf("change %d over %s: db is %v, want %v", i, proto, got, dbTasks[:i%2+1])
			}
		}
	}
}

// Two networks with a service of the same name: each listener answers its own network's VIP.
func TestServeZonesByListener(t *testing.T) {
	n := newTestNetns(t, gatewayA, gatewayB)
	s := newTestServer(t, Config{})
	otherVIP := netip.MustParseAddr("198.18.54.2")
	other := Zone{Network: otherNetwork, Listen: gatewayB, Services: []Service{{Name: "web", VIP: otherVIP}}}
	syncIn(t, n, s, testZone(gatewayA), other)
	for _, proto := range protocols {
		for listen, want := range map[netip.Addr]netip.Addr{gatewayA: webVIP, gatewayB: otherVIP} {
			if got := answerAddrs(queryIn(t, n, proto, listen, "web.", dns.TypeA)); !slices.Equal(got, []netip.Addr{want}) {
				t.Errorf("web at %s over %s: %v, want %v", listen, proto, got, want)
			}
		}
		// db is testNetwork's only: the other network's listener forwards it, and with no
		// upstream answers SERVFAIL.
		if resp := queryIn(t, n, proto, gatewayB, "db.", dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("db at the other network's listener over %s: %s, want SERVFAIL", proto, dns.RcodeToString[resp.Rcode])
		}
	}
}

// Listeners open and close with the zones' Listen addresses; the records of a zone that moves to
// another address follow it.
func TestServeListenersFollowSync(t *testing.T) {
	n := newTestNetns(t, gatewayA, gatewayB, gatewayC)
	s := newTestServer(t, Config{})
	other := Zone{Network: otherNetwork, Listen: gatewayB, Services: []Service{{Name: "api", VIP: netip.MustParseAddr("198.18.54.2")}}}
	steps := []struct {
		name   string
		zones  []Zone
		listen []netip.Addr
	}{
		{"one network", []Zone{testZone(gatewayA)}, []netip.Addr{gatewayA}},
		{"a second network", []Zone{testZone(gatewayA), other}, []netip.Addr{gatewayA, gatewayB}},
		{"the first stops listening", []Zone{testZone(netip.Addr{}), other}, []netip.Addr{gatewayB}},
		{"the first listens elsewhere", []Zone{testZone(gatewayC), other}, []netip.Addr{gatewayB, gatewayC}},
		{"the second goes", []Zone{testZone(gatewayC)}, []netip.Addr{gatewayC}},
		{"nothing", nil, nil},
	}
	for _, step := range steps {
		syncIn(t, n, s, step.zones...)
		var want []netip.AddrPort
		for _, a := range step.listen {
			want = append(want, netip.AddrPortFrom(a, 53))
		}
		if got := s.Listening(); !slices.Equal(got, want) {
			t.Errorf("%s: listening at %v, want %v", step.name, got, want)
		}
		for _, gw := range []netip.Addr{gatewayA, gatewayB, gatewayC} {
			for _, proto := range protocols {
				m := new(dns.Msg)
				m.SetQuestion("web.", dns.TypeA)
				resp, err := exchangeIn(t, n, proto, gw, m)
				switch {
				case slices.Contains(step.listen, gw) && err != nil:
					t.Errorf("%s: no answer at %s over %s: %v", step.name, gw, proto, err)
				case !slices.Contains(step.listen, gw) && err == nil:
					t.Errorf("%s: %s answers over %s (%s), but should not listen", step.name, gw, proto, dns.RcodeToString[resp.Rcode])
				}
			}
		}
	}
	// testZone moved from gatewayA to gatewayC: its names are answered there.
	syncIn(t, n, s, testZone(gatewayC))
	if got := answerAddrs(queryIn(t, n, "udp", gatewayC, "web.", dns.TypeA)); !slices.Equal(got, []netip.Addr{webVIP}) {
		t.Errorf("web at the zone's new address: %v, want %v", got, webVIP)
	}
	s.Close()
	if got := s.Listening(); len(got) != 0 {
		t.Errorf("listening at %v after Close", got)
	}
	m := new(dns.Msg)
	m.SetQuestion("web.", dns.TypeA)
	if _, err := exchangeIn(t, n, "tcp", gatewayC, m); err == nil {
		t.Errorf("%s still answers after Close", gatewayC)
	}
}

// A Listen address is listened on before it is on any interface (IP_FREEBIND), and answers
// from the moment it is.
func TestServeListenBeforeTheAddressExists(t *testing.T) {
	n := newTestNetns(t)
	s := newTestServer(t, Config{})
	syncIn(t, n, s, testZone(gatewayA))
	inNetns(t, n, func() error { return addAddr(gatewayLink, gatewayA) })
	for _, proto := range protocols {
		if got := answerAddrs(queryIn(t, n, proto, gatewayA, "web.", dns.TypeA)); !slices.Equal(got, []netip.Addr{webVIP}) {
			t.Errorf("over %s: web is %v, want %v", proto, got, webVIP)
		}
	}
}

// A Sync whose listener cannot bind changes nothing: no listener opened, the records as before.
func TestSyncThatCannotListenChangesNothing(t *testing.T) {
	n := newTestNetns(t, gatewayA, gatewayB)
	holder := newTestServer(t, Config{}) // holds gatewayB's port 53
	syncIn(t, n, holder, Zone{Network: otherNetwork, Listen: gatewayB})

	s := newTestServer(t, Config{})
	zone := testZone(netip.Addr{})
	syncIn(t, n, s, zone)
	before := s.Records()

	zone.Listen = gatewayA
	zone.Services[0].VIP = netip.MustParseAddr("198.18.53.3")
	blocked := Zone{Network: otherNetwork, Listen: gatewayB}
	var err error
	inNetns(t, n, func() error { err = s.Sync([]Zone{zone, blocked}); return nil })
	if err == nil {
		t.Fatal("Sync listening at an address whose port is taken: no error")
	}
	t.Logf("Sync: %v", err)
	if got := s.Listening(); len(got) != 0 {
		t.Errorf("the failed Sync left listeners open: %v", got)
	}
	if got := s.Records(); !slicesEqualRecords(got, before) {
		t.Errorf("the failed Sync changed the records: %v, want %v", got, before)
	}
	m := new(dns.Msg)
	m.SetQuestion("web.", dns.TypeA)
	if _, err := exchangeIn(t, n, "tcp", gatewayA, m); err == nil {
		t.Errorf("%s answers although the Sync that opened it failed", gatewayA)
	}
}

// An answer too big for the client's UDP buffer comes truncated with TC set; over TCP it is
// whole.
func TestServeTruncatesOverUDP(t *testing.T) {
	n := newTestNetns(t, gatewayA)
	s := newTestServer(t, Config{})
	zone := testZone(gatewayA)
	var many []netip.Addr
	for i := range 200 {
		many = append(many, netip.AddrFrom4([4]byte{198, 18, 60 + byte(i/250), byte(i%250 + 1)}))
	}
	zone.Services = append(zone.Services, Service{Name: "wide", Tasks: many})
	syncIn(t, n, s, zone)

	udp := queryIn(t, n, "udp", gatewayA, "wide.", dns.TypeA)
	if !udp.Truncated || len(udp.Answer) >= len(many) {
		t.Errorf("over UDP without EDNS0: TC=%v with %d records; want TC and fewer than %d", udp.Truncated, len(udp.Answer), len(many))
	}
	m := new(dns.Msg)
	m.SetQuestion("wide.", dns.TypeA)
	m.SetEdns0(4096, false)
	edns, err := exchangeIn(t, n, "udp", gatewayA, m)
	if err != nil {
		t.Fatal(err)
	}
	if edns.Truncated || len(edns.Answer) != len(many) || edns.IsEdns0() == nil {
		t.Errorf("over UDP with a 4096-byte EDNS0 buffer: TC=%v with %d records, OPT %v; want all %d and an OPT",
			edns.Truncated, len(edns.Answer), edns.IsEdns0(), len(many))
	}
	tcp := queryIn(t, n, "tcp", gatewayA, "wide.", dns.TypeA)
	if tcp.Truncated || !slices.Equal(sorted(answerAddrs(tcp)), many) {
		t.Errorf("over TCP: TC=%v with %d records; want all %d", tcp.Truncated, len(tcp.Answer), len(many))
	}
}

// Names not the zone's go to the upstreams (which listen in the test process's namespace:
// see upstream_test.go), their answers come back as they are, and SERVFAIL when the upstreams
// are down.
func TestServeForwards(t *testing.T) {
	n := newTestNetns(t, gatewayA)
	u := startUpstream(t, false)
	s := newTestServer(t, Config{Upstreams: []string{u.addr.String()}})
	syncIn(t, n, s, testZone(gatewayA))
	for _, proto := range protocols {
		resp := queryIn(t, n, proto, gatewayA, upstreamName, dns.TypeA)
		if resp.Rcode != dns.RcodeSuccess || !slices.Equal(answerAddrs(resp), []netip.Addr{upstreamAddr}) {
			t.Errorf("%s over %s: %s %v, want %v", upstreamName, proto, dns.RcodeToString[resp.Rcode], answerAddrs(resp), upstreamAddr)
		} else if resp.Answer[0].Header().Ttl != 300 || resp.Authoritative {
			t.Errorf("%s over %s: TTL %d, AA %v; want the upstream's 300 and no AA", upstreamName, proto, resp.Answer[0].Header().Ttl, resp.Authoritative)
		}
		if resp := queryIn(t, n, proto, gatewayA, "nothing.test.", dns.TypeA); resp.Rcode != dns.RcodeNameError {
			t.Errorf("nothing.test over %s: %s, want the upstream's NXDOMAIN", proto, dns.RcodeToString[resp.Rcode])
		}
	}
	// The upstream truncates big.test over UDP: the server asks again over TCP and relays the
	// whole answer to a client whose buffer takes it.
	m := new(dns.Msg)
	m.SetQuestion(upstreamBigName, dns.TypeA)
	m.SetEdns0(4096, false)
	resp, err := exchangeIn(t, n, "udp", gatewayA, m)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != upstreamBigCount {
		t.Errorf("%s: TC=%v with %d records, want %d", upstreamBigName, resp.Truncated, len(resp.Answer), upstreamBigCount)
	}

	u.stop()
	for _, proto := range protocols {
		if resp := queryIn(t, n, proto, gatewayA, upstreamName, dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s over %s with the upstream down: %s, want SERVFAIL", upstreamName, proto, dns.RcodeToString[resp.Rcode])
		}
		// The local names do not depend on it.
		if got := answerAddrs(queryIn(t, n, proto, gatewayA, "web.", dns.TypeA)); !slices.Equal(got, []netip.Addr{webVIP}) {
			t.Errorf("web over %s with the upstream down: %v", proto, got)
		}
	}
}

func slicesEqualRecords(a, b map[string]map[string][]netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for network, names := range a {
		if len(names) != len(b[network]) {
			return false
		}
		for name, addrs := range names {
			if !slices.Equal(addrs, b[network][name]) {
				return false
			}
		}
	}
	return true
}

// A listener whose socket fails is reported missing and opened anew by the next Sync.
func TestSyncReopensABrokenListener(t *testing.T) {
	n := newTestNetns(t, gatewayA)
	s := newTestServer(t, Config{})
	syncIn(t, n, s, testZone(gatewayA))

	s.mu.Lock()
	for _, srv := range s.listeners[gatewayA].serving {
		if srv.Listener != nil {
			srv.Listener.Close() // the TCP server's accept fails from now on
		}
	}
	s.mu.Unlock()
	for len(s.Listening()) != 0 { // until the server notices; the test's deadline bounds the wait
		time.Sleep(time.Millisecond)
	}

	syncIn(t, n, s, testZone(gatewayA))
	if got, want := s.Listening(), []netip.AddrPort{netip.AddrPortFrom(gatewayA, 53)}; !slices.Equal(got, want) {
		t.Errorf("listening at %v after the Sync, want %v", got, want)
	}
	for _, proto := range protocols {
		if got := answerAddrs(queryIn(t, n, proto, gatewayA, "web.", dns.TypeA)); !slices.Equal(got, []netip.Addr{webVIP}) {
			t.Errorf("over %s after the Sync: web is %v, want %v", proto, got, webVIP)
		}
	}
}

// A task on two networks asks the first network's server for a name of the second: the server
// answers it from the zone of the task's other network (SetClients) instead of forwarding it,
// for that task's address only.
func TestServeClientsOtherNetworks(t *testing.T) {
	task, stranger := netip.MustParseAddr("198.18.53.77"), netip.MustParseAddr("198.18.53.78")
	n := newTestNetns(t, gatewayA, gatewayB, task, stranger)
	s := newTestServer(t, Config{})
	otherVIP := netip.MustParseAddr("198.18.54.2")
	other := Zone{Network: otherNetwork, Listen: gatewayB, Services: []Service{{Name: "api", VIP: otherVIP}}}
	syncIn(t, n, s, testZone(gatewayA), other)
	s.SetClients(map[netip.Addr][]string{task: {"no-such-network", otherNetwork}})
	from := func(proto string, client netip.Addr, name string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		var resp *dns.Msg
		var err error
		inNetns(t, n, func() error {
			c := &dns.Client{Net: proto, Dialer: &net.Dialer{LocalAddr: localAddr(proto, client)}}
			resp, _, err = c.Exchange(m, netip.AddrPortFrom(gatewayA, 53).String())
			return nil
		})
		if err != nil {
			t.Fatalf("query %s from %s over %s: %v", name, client, proto, err)
		}
		return resp
	}
	for _, proto := range protocols {
		if got := answerAddrs(from(proto, task, "api.")); !slices.Equal(got, []netip.Addr{otherVIP}) {
			t.Errorf("api from the two-network task at the first network's listener over %s: %v, want %v", proto, got, otherVIP)
		}
		// The listener's own zone comes first.
		if got := answerAddrs(from(proto, task, "web.")); !slices.Equal(got, []netip.Addr{webVIP}) {
			t.Errorf("web from the two-network task over %s: %v, want %v", proto, got, webVIP)
		}
		// Another address gets the listener's zone alone: api is forwarded (SERVFAIL, no upstream).
		if resp := from(proto, stranger, "api."); resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("api from an address of no two-network task over %s: %s, want SERVFAIL", proto, dns.RcodeToString[resp.Rcode])
		}
	}
	s.SetClients(nil)
	if resp := from("udp", task, "api."); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("api from the task after SetClients(nil): %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
}

// localAddr is client as the local address of a dialer over proto.
func localAddr(proto string, client netip.Addr) net.Addr {
	if proto == "tcp" {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(client, 0))
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(client, 0))
}
