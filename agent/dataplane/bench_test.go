package dataplane

// Benchmarks of one endpoint change on a node that knows N services of 10 tasks each, on one
// network: the mesh's part (the nftables load balancer in a fresh namespace, the DNS server's
// records, the bridges' VIP addresses), and the whole pass (the overlay's part too, with an
// overlay that programs nothing: the agent's side of it; overlay/ benchmarks the kernel's).
// Target: under 50 ms and flat in N.

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/nstest"
	"github.com/shoal/shoal/mesh/dns"
	"github.com/shoal/shoal/mesh/nft"
	"github.com/shoal/shoal/overlay"
)

const benchTasks = 10

func BenchmarkMeshOneEndpointChange1000(b *testing.B)  { benchmarkOneEndpointChange(b, 1000, false) }
func BenchmarkMeshOneEndpointChange10000(b *testing.B) { benchmarkOneEndpointChange(b, 10000, false) }
func BenchmarkPassOneEndpointChange1000(b *testing.B)  { benchmarkOneEndpointChange(b, 1000, true) }
func BenchmarkPassOneEndpointChange10000(b *testing.B) { benchmarkOneEndpointChange(b, 10000, true) }

// benchView is n services in vip mode on one network, each with benchTasks endpoints.
func benchView(n int) ([]*api.ServiceView, []*api.Endpoint) {
	var services []*api.ServiceView
	var eps []*api.Endpoint
	for i := range n {
		id := fmt.Sprintf("s%05d", i)
		services = append(services, &api.ServiceView{Id: id, Name: fmt.Sprintf("svc%05d", i), Networks: []string{modelNet1},
			Vips: []*api.ServiceVIP{{NetworkId: modelNet1, Ip: benchAddr(0, i).String()}}})
		for j := range benchTasks {
			eps = append(eps, benchEndpoint(id, fmt.Sprintf("%s-t%d", id, j), benchAddr(1+j, i), uint64(j+1)))
		}
	}
	return services, eps
}

// benchAddr is address i of block k, in 10.0.0.0/8: blocks of 65,536.
func benchAddr(k, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(k), byte(i >> 8), byte(i)})
}

func benchEndpoint(service, task string, ip netip.Addr, slot uint64) *api.Endpoint {
	b := ip.As4()
	return &api.Endpoint{ServiceId: service, NetworkId: modelNet1, TaskId: task, Ip: ip.String(), Slot: slot,
		Vtep: "198.18.0.2", Mac: fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])}
}

func benchmarkOneEndpointChange(b *testing.B, n int, wholePass bool) {
	services, eps := benchView(n)
	nstest.InTemp(b, func() error {
		lb, err := nft.New(nft.Config{Table: "shoal-bench"})
		if err != nil {
			return err
		}
		srv, err := dns.New(dns.Config{})
		if err != nil {
			return err
		}
		defer srv.Close()
		// No bridge: no VIP address to hold and no DNS listener, the records are kept all
		// the same.
		c := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: nullOverlay{},
			MTU: 1450, Balancer: lb, DNS: srv, Bridges: &fakeBridges{exists: map[string]bool{}, vips: map[string][]netip.Addr{}}})
		c.SetNetworks([]*api.Network{network(modelNet1, "10.0.0.0/8")})
		c.ApplyEndpoints(true, eps, nil)
		c.ApplyServices(true, services, nil)
		c.pass()
		if c.programmed == nil {
			return fmt.Errorf("the whole mesh was not programmed")
		}
		// Each iteration replaces task 3 of one service with a new one at another address,
		// spread over the services; it alternates between two addresses.
		i := 0
		for b.Loop() {
			k := (i * 7919) % n
			id := fmt.Sprintf("s%05d", k)
			old := fmt.Sprintf("%s-t3-%d", id, i/n%2)
			task := fmt.Sprintf("%s-t3-%d", id, (i/n+1)%2)
			if i < n {
				old = fmt.Sprintf("%s-t3", id)
			}
			c.ApplyEndpoints(false, []*api.Endpoint{benchEndpoint(id, task, benchAddr(20+(i/n+1)%2, k), 4)},
				[]*api.EndpointKey{{NetworkId: modelNet1, TaskId: old}})
			if wholePass {
				c.pass()
			} else {
				c.mu.Lock()
				c.syncMeshLocked(false)
				c.mu.Unlock()
			}
			if c.programmed == nil || len(c.dirtyServices) != 0 {
				return fmt.Errorf("iteration %d: the change was not programmed alone", i)
			}
			i++
		}
		return nil
	})
}

// nullOverlay programs nothing and holds every network it is given.
type nullOverlay struct{}

func (nullOverlay) Sync(overlay.Desired) (overlay.Changes, error) { return overlay.Changes{}, nil }
func (nullOverlay) Update(string, overlay.EndpointUpdate) (overlay.Changes, error) {
	return overlay.Changes{}, nil
}
func (nullOverlay) Remove(string) error                             { return nil }
func (nullOverlay) Devices() ([]overlay.Device, error)              { return nil, nil }
func (nullOverlay) Inspect(overlay.Desired) (overlay.Report, error) { return overlay.Report{}, nil }
func (nullOverlay) Read(string) (overlay.Kernel, error)             { return overlay.Kernel{}, nil }
