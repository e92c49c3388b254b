package dns

// Benchmarks at the scale of a big network: 10,000 services, each with a VIP and three
// running tasks in slots 1-3. Run: go test -run '^$' -bench . -benchmem ./mesh/dns/

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

const benchServices = 10_000

// benchZone is a zone of benchServices services; generation changes one task IP of every
// service, so that two generations differ everywhere.
func benchZone(listen netip.Addr, generation int) Zone {
	zone := Zone{Network: testNetwork, Listen: listen, Services: make([]Service, benchServices)}
	for i := range benchServices {
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
	zones := [2][]Zone{{benchZone(netip.Addr{}, 0)}, {benchZone(netip.Addr{}, 1)}}
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

func BenchmarkLookup(b *testing.B) {
	s := newTestServer(b, Config{})
	if err := s.Sync([]Zone{benchZone(netip.Addr{}, 0)}); err != nil {
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
	syncIn(b, n, s, benchZone(gatewayA, 0))
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
