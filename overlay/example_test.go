package overlay_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"

	"github.com/shoal/shoal/overlay"
)

// A node agent programs a network whose tasks run on this node and two others. It runs inside the
// node's network namespace, as root; the example is compiled, not run.
func Example() {
	m, err := overlay.New(overlay.Config{LocalVTEP: netip.MustParseAddr("198.18.0.1")})
	if err != nil {
		log.Fatal(err)
	}
	ip := netip.MustParseAddr("10.20.0.13")
	d := overlay.Desired{
		Network: overlay.Network{ID: "x3k9q2mf7a1b", VNI: 4097, Bridge: "shlx3k9q2mf7a", MTU: 1450},
		Endpoints: []overlay.Endpoint{
			{IP: ip, MAC: net.HardwareAddr{0x02, 0x42, 10, 20, 0, 13}, VTEP: netip.MustParseAddr("198.18.0.2")},
		},
		Peers: []netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")},
	}
	ch, err := m.Sync(d)
	switch {
	case errors.Is(err, overlay.ErrNoBridge):
		return // no local task yet: Sync again once shoal-bridge has made the bridge
	case err != nil:
		log.Fatal(err)
	}
	fmt.Printf("added %d, replaced %d, removed %d\n", ch.Added, ch.Replaced, ch.Removed)

	report, err := m.Inspect(d)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range report.FDB {
		fmt.Println(e.MAC, e.Desired, e.Programmed, e.Status)
	}
}

// A node agent programs one endpoint that moved to another node, falling back to a Sync of the
// network's whole view when the Manager does not know what the kernel holds for it.
func ExampleManager_Update() {
	m, err := overlay.New(overlay.Config{LocalVTEP: netip.MustParseAddr("198.18.0.1")})
	if err != nil {
		log.Fatal(err)
	}
	view := overlay.Desired{
		Network: overlay.Network{ID: "x3k9q2mf7a1b", VNI: 4097, Bridge: "shlx3k9q2mf7a", MTU: 1450},
		Endpoints: []overlay.Endpoint{
			{IP: netip.MustParseAddr("10.20.0.13"), MAC: net.HardwareAddr{0x02, 0x42, 10, 20, 0, 13}, VTEP: netip.MustParseAddr("198.18.0.3")},
		},
	}
	u := overlay.EndpointUpdate{Set: view.Endpoints} // the view already has the endpoint at its new node
	ch, err := m.Update(view.Network.ID, u)
	if errors.Is(err, overlay.ErrNotSynced) {
		ch, err = m.Sync(view)
	}
	if err != nil && !errors.Is(err, overlay.ErrNoBridge) {
		log.Fatal(err)
	}
	fmt.Printf("added %d, replaced %d, removed %d\n", ch.Added, ch.Replaced, ch.Removed)
}
