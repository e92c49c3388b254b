package backend_test

import (
	"fmt"
	"net/netip"

	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/backend"
)

// A node agent opens its balancer once, then calls Sync with the whole State on every change
// and Repair now and then. (Not run: it needs root and changes the namespace's netfilter.)
func Example() {
	lb, err := backend.Open(backend.Auto, backend.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	state := mesh.State{
		VIPs: []mesh.VIP{{
			Service: "svc1", Name: "web", Network: "nw1", Addr: netip.MustParseAddr("10.20.0.2"),
			Backends: []netip.Addr{netip.MustParseAddr("10.20.0.5"), netip.MustParseAddr("10.20.0.6")},
		}},
		Ports: []mesh.Port{{
			Service: "svc1", Name: "web", Protocol: mesh.TCP, Published: 8080, Mode: mesh.Ingress,
			Backends: []mesh.Backend{{Addr: netip.MustParseAddr("10.20.0.5"), Port: 80}},
		}},
		SNAT: netip.MustParseAddr("10.20.0.250"),
	}
	changes, err := lb.Sync(state)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %+v\n", lb.Backend(), changes)
	diffs, err := lb.Inspect(state)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range diffs {
		fmt.Println(d)
	}
}
