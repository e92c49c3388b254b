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

// A task of web starts: Update replaces web's records and no other's, at a cost that does not
// grow with the number of services on the network; then web is removed.
func ExampleServer_Update() {
	s, err := shoaldns.New(shoaldns.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	const network = "x3k9q2mf7a1b"
	task1, task2 := netip.MustParseAddr("10.20.0.11"), netip.MustParseAddr("10.20.0.12")
	web := shoaldns.Service{
		Name:  "web",
		VIP:   netip.MustParseAddr("10.20.0.2"),
		Tasks: []netip.Addr{task1},
		Slots: map[uint64]netip.Addr{1: task1, 2: task2},
	}
	db := shoaldns.Service{Name: "db", Tasks: []netip.Addr{netip.MustParseAddr("10.20.0.21")}}
	if err := s.Sync([]shoaldns.Zone{{Network: network, Services: []shoaldns.Service{web, db}}}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Records()[network]["tasks.web"])

	web.Tasks = []netip.Addr{task1, task2} // slot 2's task is running
	if err := s.Update(network, []shoaldns.Service{web}, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Records()[network]["tasks.web"])

	if err := s.Update(network, nil, []string{"web"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(s.Records()[network]), s.Records()[network]["db"])
	// Output:
	// [10.20.0.11]
	// [10.20.0.11 10.20.0.12]
	// 2 [10.20.0.21]
}
