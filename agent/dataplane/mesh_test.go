package dataplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/dns"
	"github.com/shoal/shoal/mesh/vipaddr"
	"github.com/shoal/shoal/overlay"
)

// fakeBalancer holds the state it is given whole (Sync, Repair) or in pieces (Update), as a
// Balancer's kernel would, and counts the calls.
type fakeBalancer struct {
	mu      sync.Mutex
	state   *mesh.State // nil until the first Sync
	syncs   int
	updates int
	repairs int
	// refuseUpdates makes Update fail, as a kernel refusing a batch does.
	refuseUpdates bool
}

func (f *fakeBalancer) Backend() string { return "fake" }
func (f *fakeBalancer) Sync(s mesh.State) (mesh.Changes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := s.Validate(); err != nil {
		return mesh.Changes{}, err
	}
	f.syncs++
	s = normalState(s)
	f.state = &s
	return mesh.Changes{Updated: 1}, nil
}
func (f *fakeBalancer) Update(u mesh.Update) (mesh.Changes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == nil {
		return mesh.Changes{}, mesh.ErrNoState
	}
	if f.refuseUpdates {
		f.state = nil
		return mesh.Changes{}, errors.New("batch refused")
	}
	x := mesh.NewIndex(*f.state)
	if err := x.Check(u); err != nil {
		return mesh.Changes{}, err
	}
	f.updates++
	x.Apply(u)
	next := normalState(x.State())
	f.state = &next
	return mesh.Changes{Updated: 1}, nil
}
func (f *fakeBalancer) Repair(s mesh.State) (mesh.Changes, error) {
	f.mu.Lock()
	f.repairs++
	f.mu.Unlock()
	return f.Sync(s)
}
func (f *fakeBalancer) Inspect(mesh.State) ([]mesh.Difference, error) { return nil, nil }
func (f *fakeBalancer) Read() (mesh.State, error) {
	st, _ := f.last()
	return st, nil
}
func (f *fakeBalancer) Remove() error { return nil }

func (f *fakeBalancer) last() (mesh.State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == nil {
		return mesh.State{}, false
	}
	return *f.state, true
}

func (f *fakeBalancer) calls() (syncs, updates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs, f.updates
}

// normalState sorts s's VIPs, ports and backends, so that equal states compare equal.
func normalState(s mesh.State) mesh.State {
	out := mesh.State{SNAT: s.SNAT}
	for _, v := range s.VIPs {
		v.Backends = slices.Clone(v.Backends)
		slices.SortFunc(v.Backends, netip.Addr.Compare)
		out.VIPs = append(out.VIPs, v)
	}
	for _, p := range s.Ports {
		p.Backends = slices.Clone(p.Backends)
		slices.SortFunc(p.Backends, func(a, b mesh.Backend) int { return strings.Compare(a.String(), b.String()) })
		out.Ports = append(out.Ports, p)
	}
	slices.SortFunc(out.VIPs, func(a, b mesh.VIP) int { return a.Addr.Compare(b.Addr) })
	slices.SortFunc(out.Ports, func(a, b mesh.Port) int { return strings.Compare(a.Key(), b.Key()) })
	return out
}

// fakeBridges is a node's bridges: which exist, and their VIPs.
type fakeBridges struct {
	mu      sync.Mutex
	exists  map[string]bool
	vips    map[string][]netip.Addr
	ensured []string
}

func (f *fakeBridges) Exists(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exists[name]
}
func (f *fakeBridges) Ensure(name string, mtu int, gws []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exists[name] = true
	f.ensured = append(f.ensured, fmt.Sprintf("%s mtu %d %v", name, mtu, gws))
	return nil
}
func (f *fakeBridges) SyncVIPs(name string, vips []netip.Addr) (vipaddr.Changes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists[name] {
		return vipaddr.Changes{}, vipaddr.ErrNoBridge
	}
	f.vips[name] = slices.Clone(vips)
	return vipaddr.Changes{Added: len(vips)}, nil
}
func (f *fakeBridges) ReadVIPs(name string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.vips[name]), nil
}

// fakeDNS holds the zones it is given whole (Sync) or in pieces (Update).
type fakeDNS struct {
	mu      sync.Mutex
	zones   []dns.Zone
	clients map[netip.Addr][]string
}

func (f *fakeDNS) SetClients(c map[netip.Addr][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients = c
}

// clientsText is the clients last set, "ip→[networks]" sorted by address.
func (f *fakeDNS) clientsText() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, ip := range slices.SortedFunc(maps.Keys(f.clients), netip.Addr.Compare) {
		out = append(out, fmt.Sprintf("%s→%v", ip, f.clients[ip]))
	}
	return strings.Join(out, " ")
}

func (f *fakeDNS) Sync(z []dns.Zone) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.zones = normalZones(z)
	return nil
}
func (f *fakeDNS) Update(network string, set []dns.Service, removed []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.zones, func(z dns.Zone) bool { return z.Network == network })
	if i < 0 {
		return dns.ErrUnknownNetwork
	}
	z := &f.zones[i]
	z.Services = slices.DeleteFunc(slices.Clone(z.Services), func(s dns.Service) bool {
		return slices.ContainsFunc(removed, func(n string) bool { return strings.EqualFold(n, s.Name) }) ||
			slices.ContainsFunc(set, func(t dns.Service) bool { return strings.EqualFold(t.Name, s.Name) })
	})
	z.Services = append(z.Services, set...)
	f.zones = normalZones(f.zones)
	return nil
}

func (f *fakeDNS) current() []dns.Zone {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.zones
}

// normalZones sorts zones and their services (by lower-case name), so that equal zones compare
// equal.
func normalZones(zones []dns.Zone) []dns.Zone {
	out := slices.Clone(zones)
	for i := range out {
		if len(out[i].Services) == 0 {
			out[i].Services = nil // no services, however they went
			continue
		}
		out[i].Services = slices.Clone(out[i].Services)
		slices.SortFunc(out[i].Services, func(a, b dns.Service) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	}
	slices.SortFunc(out, func(a, b dns.Zone) int { return strings.Compare(a.Network, b.Network) })
	return out
}

func (f *fakeDNS) Lookup(string, string, uint16) (dns.Answer, error) { return dns.Answer{}, nil }
func (f *fakeDNS) Records() map[string]map[string][]netip.Addr       { return nil }
func (f *fakeDNS) Listening() []netip.AddrPort                       { return nil }
func (f *fakeDNS) Broken() bool                                      { return false }

func (f *fakeDNS) listens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, z := range f.zones {
		out = append(out, z.Network+"@"+z.Listen.String())
	}
	return out
}

func network(id, subnet string) *api.Network {
	return &api.Network{Id: id, Vni: 4096, Spec: &api.NetworkSpec{Ipam: []*api.IPAMConfig{{Subnet: subnet}}}}
}

// The controller programs the mesh from the views: the ingress network's bridge where the node
// has none, VIP addresses on the bridges it has, the balancer's whole state, and DNS zones that
// listen on the gateways of the bridges here; each change reprograms, and the repair pass repairs.
func TestControllerProgramsTheMesh(t *testing.T) {
	ov := &fakeOverlay{synced: map[string]overlay.Desired{}, local: netip.MustParseAddr("198.18.0.1")}
	lb := &fakeBalancer{}
	br := &fakeBridges{exists: map[string]bool{"shlnet2bbbbbb": true}, vips: map[string][]netip.Addr{}}
	d := &fakeDNS{}
	c := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: ov, MTU: 1450, RepairPeriod: 50 * time.Millisecond,
		Balancer: lb, Bridges: br, DNS: d})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)

	c.SetNetworks([]*api.Network{network("net1aaaaaaaaaaaa", "10.0.0.0/24"), network("net2bbbbbbbbbbbb", "10.1.0.0/24")})
	c.ApplyEndpoints(true, []*api.Endpoint{
		{NetworkId: "net1aaaaaaaaaaaa", ServiceId: "s-web", TaskId: "t1", Ip: "10.0.0.11", Vtep: "198.18.0.2", Mac: "02:42:0a:00:00:0b", Slot: 1},
	}, nil)
	c.ApplyServices(true, []*api.ServiceView{
		{Id: "s-web", Name: "web", Networks: []string{"net1aaaaaaaaaaaa"},
			Vips:  []*api.ServiceVIP{{NetworkId: "net1aaaaaaaaaaaa", Ip: "10.0.0.2"}},
			Ports: []*api.PortConfig{{TargetPort: 80, PublishedPort: 8080}}},
		{Id: "s-api", Name: "api", Networks: []string{"net2bbbbbbbbbbbb"},
			Vips: []*api.ServiceVIP{{NetworkId: "net2bbbbbbbbbbbb", Ip: "10.1.0.2"}}},
	}, nil)
	want := []string{
		"vip web net1aaaaaaaaaaaa 10.0.0.2→[10.0.0.11]",
		"vip api net2bbbbbbbbbbbb 10.1.0.2→[]",
		"port web tcp/8080 ingress→[10.0.0.11:80]",
		"snat 198.18.0.1",
	}
	slices.Sort(want)
	rendered := func() []string {
		st, ok := lb.last()
		if !ok {
			return nil
		}
		got := renderState(st)
		slices.Sort(got)
		return got
	}
	waitFor(t, "the balancer's state", func() bool { return slices.Equal(rendered(), want) })
	br.mu.Lock()
	ensured := slices.Clone(br.ensured)
	br.mu.Unlock()
	if wantEnsured := []string{"shlnet1aaaaaa mtu 1450 [10.0.0.1/24]"}; !slices.Equal(ensured, wantEnsured) {
		t.Errorf("bridges made %v, want %v (the ingress port's network)", ensured, wantEnsured)
	}
	waitFor(t, "VIP addresses on both bridges", func() bool {
		a, _ := br.ReadVIPs("shlnet1aaaaaa")
		b, _ := br.ReadVIPs("shlnet2bbbbbb")
		return fmt.Sprint(a, b) == "[10.0.0.2] [10.1.0.2]"
	})
	waitFor(t, "DNS zones listening on the gateways", func() bool {
		return strings.Join(d.listens(), " ") == "net1aaaaaaaaaaaa@10.0.0.1 net2bbbbbbbbbbbb@10.1.0.1"
	})

	// A second task: the VIP and the port follow.
	c.ApplyEndpoints(false, []*api.Endpoint{
		{NetworkId: "net1aaaaaaaaaaaa", ServiceId: "s-web", TaskId: "t2", Ip: "10.0.0.12", Vtep: "198.18.0.1", Mac: "02:42:0a:00:00:0c", Slot: 2},
	}, nil)
	want = []string{
		"vip web net1aaaaaaaaaaaa 10.0.0.2→[10.0.0.11 10.0.0.12]",
		"vip api net2bbbbbbbbbbbb 10.1.0.2→[]",
		"port web tcp/8080 ingress→[10.0.0.11:80 10.0.0.12:80]",
		"snat 198.18.0.1",
	}
	slices.Sort(want)
	waitFor(t, "the new backend", func() bool { return slices.Equal(rendered(), want) })

	// A service removed: its VIP goes from the balancer and its bridge.
	c.ApplyServices(false, nil, []string{"s-api"})
	waitFor(t, "the removed service gone", func() bool {
		b, _ := br.ReadVIPs("shlnet2bbbbbb")
		return len(b) == 0 && !slices.ContainsFunc(rendered(), func(s string) bool { return strings.Contains(s, "api") })
	})
	waitFor(t, "a repair pass", func() bool { lb.mu.Lock(); defer lb.mu.Unlock(); return lb.repairs > 0 })

	// A local task on both networks: the DNS server answers it the names of both on either
	// network's listener. A remote task on both, or a local one on one network, is no client.
	c.ApplyEndpoints(false, []*api.Endpoint{
		{NetworkId: "net1aaaaaaaaaaaa", ServiceId: "s-cli", TaskId: "t3", Ip: "10.0.0.13", Vtep: "198.18.0.1", Mac: "02:42:0a:00:00:0d", Slot: 1},
		{NetworkId: "net2bbbbbbbbbbbb", ServiceId: "s-cli", TaskId: "t3", Ip: "10.1.0.13", Vtep: "198.18.0.1", Mac: "02:42:0a:01:00:0d", Slot: 1},
		{NetworkId: "net1aaaaaaaaaaaa", ServiceId: "s-cli", TaskId: "t4", Ip: "10.0.0.14", Vtep: "198.18.0.2", Mac: "02:42:0a:00:00:0e", Slot: 2},
		{NetworkId: "net2bbbbbbbbbbbb", ServiceId: "s-cli", TaskId: "t4", Ip: "10.1.0.14", Vtep: "198.18.0.2", Mac: "02:42:0a:01:00:0e", Slot: 2},
	}, nil)
	wantClients := "10.0.0.13→[net2bbbbbbbbbbbb] 10.1.0.13→[net1aaaaaaaaaaaa]"
	waitFor(t, "the two-network task as a DNS client", func() bool { return d.clientsText() == wantClients })
	c.ApplyEndpoints(false, nil, []*api.EndpointKey{{NetworkId: "net2bbbbbbbbbbbb", TaskId: "t3"}})
	waitFor(t, "no DNS clients once the task is on one network", func() bool { return d.clientsText() == "" })
}

// Without a complete view of the services the mesh is left alone: an agent restarted while no
// leader answers must not empty its load balancer.
func TestControllerLeavesTheMeshUntilAView(t *testing.T) {
	lb := &fakeBalancer{}
	c := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: &fakeOverlay{synced: map[string]overlay.Desired{}, local: netip.MustParseAddr("198.18.0.1")},
		MTU: 1450, RepairPeriod: 10 * time.Millisecond, Balancer: lb, Bridges: &fakeBridges{exists: map[string]bool{}, vips: map[string][]netip.Addr{}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	c.ApplyEndpoints(true, nil, nil)
	time.Sleep(100 * time.Millisecond) // ten repair passes
	if _, ok := lb.last(); ok {
		t.Fatal("the balancer was programmed before any view of the services")
	}
}
