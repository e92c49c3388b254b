package dns_test

import (
	"fmt"
	"log"
	"net/netip"

	"github.com/miekg/dns"

	shoaldns "github.com/shoal/shoal/mesh/dns"
)

// A node agent serves one network's names. Its zone does not listen here (Listen is the zero
// Addr), so the example runs anywhere; the agent gives the network's gateway, and calls Sync
// from inside the node's network namespace.
func Example() {
	s, err := shoaldns.New(shoaldns.Config{Upstreams: []string{"198.18.0.10:53"}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	task1, task2 := netip.MustParseAddr("10.20.0.11"), netip.MustParseAddr("10.20.0.12")
	err = s.Sync([]shoaldns.Zone{{
		Network: "x3k9q2mf7a1b",
		Name:    "front",
		Services: []shoaldns.Service{{
			Name:  "web",
			VIP:   netip.MustParseAddr("10.20.0.2"),
			Tasks: []netip.Addr{task1, task2},
			Slots: map[uint64]netip.Addr{1: task1, 2: task2},
		}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"web", "2.web", "7.web"} {
		a, err := s.Lookup("x3k9q2mf7a1b", name, dns.TypeA)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, dns.RcodeToString[a.Rcode], a.Addrs)
	}
	// Output:
	// web NOERROR [10.20.0.2]
	// 2.web NOERROR [10.20.0.12]
	// 7.web NXDOMAIN []
}
