package dns

// Benchmarks at the scale of a big network: 10,000 services, each with a VIP and three
// running tasks in slots 1-3; Update's also at 1,000, to show its cost does not follow the
// zone's size. Run: go test -run '^$' -bench . -benchmem ./mesh/dns/

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

const benchServices = 10_000

// benchZone is a zone of services services (at most benchServices); generation changes one
// task IP (and slot IP) of every service, so that two generations differ everywhere.
func benchZone(services int, listen netip.Addr, generation int) Zone {
	zone := Zone{Network: testNetwork, Listen: listen, Services: make([]Service, services)}
	for i := range services {
		tasks := []netip.Addr{benchAddr(3*i + 1), benchAddr(3*i + 2), benchAddr(3*i + 3 + generation%2*3*benchServices)}
		zone.Services[i] = Service{
			Name:  fmt.Sprintf("svc%d", i),
			VIP:   netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}),
			Tasks: tasks,
			Slots: map[uint64]netip.Addr{1: tasks[0], 2: tasks[1], 3: tasks[2]},
		}
	}
	return zone
}

// benchAddr is the n-th address of 198.18.0.0/16 after the network address.
func benchAddr(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)})
}

func BenchmarkSync(b *testing.B) {
	s := newTestServer(b, Config{})
	zones := [2][]Zone{{benchZone(benchServices, netip.Addr{}, 0)}, {benchZone(benchServices, netip.Addr{}, 1)}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Sync(zones[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(benchServices), "services")
}

func BenchmarkUpdateOneService1000(b *testing.B)  { benchmarkUpdateOneService(b, 1_000) }
func BenchmarkUpdateOneService10000(b *testing.B) { benchmarkUpdateOneService(b, 10_000) }

// benchmarkUpdateOneService is one task starting in a zone of services services: each Update
// gives one service another third task (and slot 3 IP), going through the services in turn.
func benchmarkUpdateOneService(b *testing.B, services int) {
	s := newTestServer(b, Config{})
	gens := [2]Zone{benchZone(services, netip.Addr{}, 0), benchZone(services, netip.Addr{}, 1)}
	if err := s.Sync([]Zone{gens[0]}); err != nil {
		b.Fatal(err)
	}
	set := make([]Service, 1)
	i := 0
	update := func() {
		set[0] = gens[(i/services+1)%2].Services[i%services] // the other generation's than it has
		if err := s.Update(testNetwork, set, nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
	// Steady state, as in an agent that has been running a while: one pass over the zone
	// before timing, so that the heap has grown and been collected to its working size. Else a
	// short run on a big zone mostly measures the kernel faulting in fresh pages, as no GC
	// cycle comes to free any.
	for range services {
		update()
	}
	b.ReportAllocs()
	for b.Loop() {
		update()
	}
	b.ReportMetric(float64(services), "services")
}

func BenchmarkLookup(b *testing.B) {
	s := newTestServer(b, Config{})
	if err := s.Sync([]Zone{benchZone(benchServices, netip.Addr{}, 0)}); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		kind, name string
		rcode      int
	}{
		{"vip", "svc5000", dns.RcodeSuccess},
		{"tasks", "tasks.svc5000", dns.RcodeSuccess},
		{"slot", "2.svc5000", dns.RcodeSuccess},
		{"nxdomain", "7.svc5000", dns.RcodeNameError},
	} {
		b.Run(bc.kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a, err := s.Lookup(testNetwork, bc.name, dns.TypeA)
				if err != nil || a.Rcode != bc.rcode {
					b.Fatalf("%s: %v %v", bc.name, a, err)
				}
			}
		})
	}
}

// BenchmarkQuery is one query over a real socket, client and server in one namespace: the
// latency a container sees, less the bridge. Each query opens its own socket (and TCP
// connection), as glibc's resolver does.
func BenchmarkQuery(b *testing.B) {
	n := newTestNetns(b, gatewayA)
	s := newTestServer(b, Config{})
	syncIn(b, n, s, benchZone(benchServices, gatewayA, 0))
	for _, proto := range protocols {
		b.Run(proto, func(b *testing.B) {
			inNetns(b, n, func() error {
				client := &dns.Client{Net: proto}
				server := netip.AddrPortFrom(gatewayA, 53).String()
				m := new(dns.Msg)
				m.SetQuestion("tasks.svc5000.", dns.TypeA)
				for b.Loop() {
					resp, _, err := client.Exchange(m, server)
					if err != nil || len(resp.Answer) != 3 {
						return fmt.Errorf("query: %v %v", resp, err)
					}
				}
				return nil
			})
		})
	}
}
