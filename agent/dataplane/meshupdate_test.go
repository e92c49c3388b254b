package dataplane

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/overlay"
)

// viewModel is a cluster's services and endpoints as a leader would stream them: VIPs, published
// ports and names unique among the services, as the control API keeps them.
type viewModel struct {
	rng       *rand.Rand
	networks  []string
	services  map[string]*api.ServiceView
	endpoints map[[2]string]*api.Endpoint // (network, task)
	nextID    int
}

const (
	modelNet1 = "net1aaaaaaaaaaaa"
	modelNet2 = "net2bbbbbbbbbbbb"
)

var modelNames = []string{"web", "api", "db", "cache", "queue", "Web2", "auth"}

func newViewModel(seed uint64) *viewModel {
	return &viewModel{rng: rand.New(rand.NewPCG(seed, 1)), networks: []string{modelNet1, modelNet2},
		services: map[string]*api.ServiceView{}, endpoints: map[[2]string]*api.Endpoint{}}
}

func (m *viewModel) id(prefix string) string {
	m.nextID++
	return fmt.Sprintf("%s%d", prefix, m.nextID)
}

// free returns a value of candidates that no service but except uses, or "" when none is.
func (m *viewModel) free(candidates []string, except string, used func(*api.ServiceView) []string) string {
	taken := map[string]bool{}
	for id, s := range m.services {
		if id != except {
			for _, v := range used(s) {
				taken[v] = true
			}
		}
	}
	var out []string
	for _, c := range candidates {
		if !taken[c] {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return out[m.rng.IntN(len(out))]
}

func (m *viewModel) pick(list []string) string { return list[m.rng.IntN(len(list))] }

func sortedKeys[V any](mp map[string]V) []string { return slices.Sorted(maps.Keys(mp)) }

// respec gives service s (ID id) a random spec: name, mode, networks (with fresh VIPs when they
// change), and published ports, all free of the other services'.
func (m *viewModel) respec(id string, s *api.ServiceView) *api.ServiceView {
	n := &api.ServiceView{Id: id, Name: s.GetName(), Mode: s.GetMode(), Networks: s.GetNetworks(), Vips: s.GetVips(), Ports: s.GetPorts()}
	if name := m.free(modelNames, id, func(o *api.ServiceView) []string { return []string{o.GetName()} }); name != "" && (n.Name == "" || m.rng.IntN(3) == 0) {
		n.Name = name
	}
	if s.GetName() == "" || m.rng.IntN(4) == 0 {
		n.Mode = []api.EndpointSpec_Mode{api.EndpointSpec_MODE_VIP, api.EndpointSpec_MODE_DNSRR}[m.rng.IntN(2)]
	}
	if len(n.Networks) == 0 || m.rng.IntN(4) == 0 {
		n.Networks = [][]string{{modelNet1}, {modelNet2}, {modelNet1, modelNet2}, {modelNet2, modelNet1}}[m.rng.IntN(4)]
		n.Vips = nil
		for _, net := range n.Networks {
			m.nextID++
			prefix := "10.0"
			if net == modelNet2 {
				prefix = "10.1"
			}
			n.Vips = append(n.Vips, &api.ServiceVIP{NetworkId: net, Ip: fmt.Sprintf("%s.%d.%d", prefix, 100+m.nextID/250, 1+m.nextID%250)})
		}
	}
	if m.rng.IntN(2) == 0 {
		n.Ports = nil
		for range m.rng.IntN(3) {
			candidates := slices.DeleteFunc([]string{"tcp/8080", "tcp/8081", "udp/8080", "tcp/9090", "udp/53"}, func(k string) bool {
				return slices.ContainsFunc(n.Ports, func(p *api.PortConfig) bool { return portKeyOf(p) == k })
			})
			key := m.free(candidates, id, func(o *api.ServiceView) []string {
				var keys []string
				for _, p := range o.GetPorts() {
					keys = append(keys, portKeyOf(p))
				}
				return keys
			})
			if key == "" {
				break
			}
			var proto string
			var port uint32
			fmt.Sscanf(key, "%3s/%d", &proto, &port)
			p := &api.PortConfig{PublishedPort: port, TargetPort: 80 + uint32(m.rng.IntN(3))}
			if proto == "udp" {
				p.Protocol = api.PortConfig_PROTOCOL_UDP
			}
			if m.rng.IntN(2) == 0 {
				p.PublishMode = api.PortConfig_PUBLISH_MODE_HOST
			}
			n.Ports = append(n.Ports, p)
		}
	}
	return n
}

func portKeyOf(p *api.PortConfig) string {
	if p.GetProtocol() == api.PortConfig_PROTOCOL_UDP {
		return fmt.Sprintf("udp/%d", p.GetPublishedPort())
	}
	return fmt.Sprintf("tcp/%d", p.GetPublishedPort())
}

// step makes one random change and applies it to c as the dispatcher would send it; it returns
// what it did.
func (m *viewModel) step(c *Controller) string {
	switch op := m.rng.IntN(10); {
	case op < 2 || len(m.services) == 0: // a new service
		id := m.id("s")
		s := m.respec(id, &api.ServiceView{})
		if s.Name == "" {
			return "no free name"
		}
		m.services[id] = s
		c.ApplyServices(false, []*api.ServiceView{s}, nil)
		return "create " + id
	case op < 4: // a service updated
		id := m.pick(sortedKeys(m.services))
		s := m.respec(id, m.services[id])
		m.services[id] = s
		c.ApplyServices(false, []*api.ServiceView{s}, nil)
		return "update " + id
	case op < 5: // a service removed, with its endpoints
		id := m.pick(sortedKeys(m.services))
		delete(m.services, id)
		var gone []*api.EndpointKey
		for k, ep := range m.endpoints {
			if ep.GetServiceId() == id {
				gone = append(gone, &api.EndpointKey{NetworkId: k[0], TaskId: k[1]})
				delete(m.endpoints, k)
			}
		}
		c.ApplyServices(false, nil, []string{id})
		c.ApplyEndpoints(false, nil, gone)
		return "remove " + id
	case op < 8: // a task starts
		id := m.pick(sortedKeys(m.services))
		s := m.services[id]
		task := m.id("t")
		var set []*api.Endpoint
		for _, net := range s.GetNetworks() {
			prefix := "10.0"
			if net == modelNet2 {
				prefix = "10.1"
			}
			ep := &api.Endpoint{ServiceId: id, NetworkId: net, TaskId: task, Slot: uint64(1 + m.rng.IntN(3)),
				Ip:   fmt.Sprintf("%s.%d.%d", prefix, 1+m.nextID/250, 1+m.nextID%250),
				Vtep: m.pick([]string{"198.18.0.1", "198.18.0.2"})}
			ep.Mac = macOf(ep.Ip)
			m.endpoints[[2]string{net, task}] = ep
			set = append(set, ep)
		}
		c.ApplyEndpoints(false, set, nil)
		return "start " + task + " of " + id
	default: // a task drains or goes
		if len(m.endpoints) == 0 {
			return "nothing to stop"
		}
		keys := slices.SortedFunc(maps.Keys(m.endpoints), cmpPair)
		k := keys[m.rng.IntN(len(keys))]
		ep := m.endpoints[k]
		if r := m.rng.IntN(3); r == 0 { // its node changes its underlay address (a re-join)
			moved := &api.Endpoint{ServiceId: ep.ServiceId, NetworkId: ep.NetworkId, TaskId: ep.TaskId, Ip: ep.Ip, Mac: ep.Mac, Slot: ep.Slot,
				Draining: ep.Draining, Vtep: m.pick([]string{"198.18.0.1", "198.18.0.2", "198.18.0.3"})}
			m.endpoints[k] = moved
			c.ApplyEndpoints(false, []*api.Endpoint{moved}, nil)
			return "move " + k[1] + " to " + moved.Vtep
		} else if !ep.GetDraining() && r == 1 {
			d := &api.Endpoint{ServiceId: ep.ServiceId, NetworkId: ep.NetworkId, TaskId: ep.TaskId, Ip: ep.Ip, Vtep: ep.Vtep, Mac: ep.Mac, Slot: ep.Slot, Draining: true}
			m.endpoints[k] = d
			c.ApplyEndpoints(false, []*api.Endpoint{d}, nil)
			return "drain " + k[1]
		}
		delete(m.endpoints, k)
		c.ApplyEndpoints(false, nil, []*api.EndpointKey{{NetworkId: k[0], TaskId: k[1]}})
		return "stop " + k[1] + " on " + k[0]
	}
}

func macOf(ip string) string {
	b := netip.MustParseAddr(ip).As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

func cmpPair(a, b [2]string) int {
	return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
}

// overlay is the summary of what network id's overlay must hold: every endpoint of the network
// (draining ones too: they keep their connections), the other nodes' VTEPs as peers.
func (m *viewModel) overlay(id string, local netip.Addr) string {
	d := overlay.Desired{Network: overlay.Network{ID: id, VNI: 4096, Bridge: cni.BridgeName(id), MTU: 1450}}
	peers := map[netip.Addr]bool{}
	for k, ep := range m.endpoints {
		if k[0] != id {
			continue
		}
		mac, _ := net.ParseMAC(ep.GetMac())
		e := overlay.Endpoint{IP: netip.MustParseAddr(ep.GetIp()), MAC: mac, VTEP: netip.MustParseAddr(ep.GetVtep())}
		d.Endpoints = append(d.Endpoints, e)
		if e.VTEP != local {
			peers[e.VTEP] = true
		}
	}
	slices.SortFunc(d.Endpoints, func(a, b overlay.Endpoint) int { return a.IP.Compare(b.IP) })
	d.Peers = slices.SortedFunc(maps.Keys(peers), netip.Addr.Compare)
	return summary(d)
}

func (m *viewModel) serviceList() []*api.ServiceView {
	var out []*api.ServiceView
	for _, id := range sortedKeys(m.services) {
		out = append(out, m.services[id])
	}
	return out
}

func (m *viewModel) endpointList() []*api.Endpoint {
	var out []*api.Endpoint
	for _, ep := range m.endpoints {
		out = append(out, ep)
	}
	return out
}

// Passes that program the changed services alone leave the balancer, the DNS zones and the
// bridges' VIP addresses exactly as programming the whole mesh from the same views would, through
// hundreds of random changes (services made, changed, renamed, moved between networks, removed;
// tasks started, drained, stopped), and they are what runs: no pass after the first programs the
// whole mesh.
func TestIncrementalPassesMatchTheWholeMesh(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			lb := &fakeBalancer{}
			br := &fakeBridges{exists: map[string]bool{cni.BridgeName(modelNet1): true, cni.BridgeName(modelNet2): true}, vips: map[string][]netip.Addr{}}
			d := &fakeDNS{}
			local := netip.MustParseAddr("198.18.0.1")
			ov := &fakeOverlay{synced: map[string]overlay.Desired{}, local: local}
			c := New(Config{LocalVTEP: local, Overlay: ov, MTU: 1450, Balancer: lb, Bridges: br, DNS: d})
			nets := []*api.Network{network(modelNet1, "10.0.0.0/16"), network(modelNet2, "10.1.0.0/16")}
			c.SetNetworks(nets)
			c.ApplyEndpoints(true, nil, nil)
			c.ApplyServices(true, nil, nil)
			c.pass()
			m := newViewModel(seed)
			for i := range 400 {
				// One to three changes at a time: a pass may program several services,
				// one of which drops a port or a name that another takes.
				var did []string
				for range 1 + m.rng.IntN(3) {
					did = append(did, m.step(c))
				}
				c.pass()
				wantLB := normalState(MeshState(MeshView{Services: m.serviceList(), Endpoints: m.endpointList(), LocalVTEP: local}))
				if got, _ := lb.last(); !reflect.DeepEqual(got, wantLB) {
					t.Fatalf("step %d (%s): the balancer holds\n%v\nwant\n%v", i, did, renderState(got), renderState(wantLB))
				}
				listen := func(id string) netip.Addr {
					return DNSAddr(nets[slices.IndexFunc(nets, func(n *api.Network) bool { return n.GetId() == id })])
				}
				wantDNS := normalZones(DNSZones(nets, m.serviceList(), m.endpointList(), listen))
				if got := d.current(); !reflect.DeepEqual(got, wantDNS) {
					t.Fatalf("step %d (%s): DNS holds\n%+v\nwant\n%+v", i, did, got, wantDNS)
				}
				for _, id := range []string{modelNet1, modelNet2} {
					got, _ := ov.last(id)
					if want := m.overlay(id, local); summary(got) != want {
						t.Fatalf("step %d (%s): the overlay of %s holds\n%s\nwant\n%s", i, did, id, summary(got), want)
					}
				}
				wantVIPs := BridgeVIPs(m.serviceList())
				for _, id := range []string{modelNet1, modelNet2} {
					if got, _ := br.ReadVIPs(cni.BridgeName(id)); !slices.Equal(got, wantVIPs[id]) {
						t.Fatalf("step %d (%s): bridge of %s holds VIPs %v, want %v", i, did, id, got, wantVIPs[id])
					}
				}
			}
			if syncs, updates := lb.calls(); syncs != 1 || updates < 100 {
				t.Errorf("the balancer had %d Syncs and %d Updates; want the first pass's Sync alone, then Updates", syncs, updates)
			}
			if ov.updates < 100 {
				t.Errorf("the overlay had %d Updates; want one per pass that changed endpoints", ov.updates)
			}
		})
	}
}

// When the balancer refuses an Update, the pass programs the whole mesh instead, and the next
// change is an Update again.
func TestARefusedUpdateFallsBackToTheWholeMesh(t *testing.T) {
	lb := &fakeBalancer{}
	br := &fakeBridges{exists: map[string]bool{cni.BridgeName(modelNet1): true}, vips: map[string][]netip.Addr{}}
	c := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: &fakeOverlay{synced: map[string]overlay.Desired{}, local: netip.MustParseAddr("198.18.0.1")}, MTU: 1450,
		Balancer: lb, Bridges: br, DNS: &fakeDNS{}})
	c.SetNetworks([]*api.Network{network(modelNet1, "10.0.0.0/16")})
	web := &api.ServiceView{Id: "s-web", Name: "web", Mode: api.EndpointSpec_MODE_VIP, Networks: []string{modelNet1},
		Vips: []*api.ServiceVIP{{NetworkId: modelNet1, Ip: "10.0.0.2"}}}
	c.ApplyEndpoints(true, nil, nil)
	c.ApplyServices(true, []*api.ServiceView{web}, nil)
	c.pass()
	start := func(task, ip string) {
		c.ApplyEndpoints(false, []*api.Endpoint{{ServiceId: "s-web", NetworkId: modelNet1, TaskId: task, Ip: ip, Vtep: "198.18.0.2", Mac: "02:42:0a:00:00:01"}}, nil)
		c.pass()
	}
	backends := func() string {
		st, _ := lb.last()
		return fmt.Sprint(st.VIPs[0].Backends)
	}

	lb.mu.Lock()
	lb.refuseUpdates = true
	lb.mu.Unlock()
	start("t1", "10.0.0.11")
	if syncs, _ := lb.calls(); syncs != 2 || backends() != "[10.0.0.11]" {
		t.Fatalf("after a refused Update: %d Syncs, backends %s; want 2 Syncs, [10.0.0.11]", syncs, backends())
	}
	lb.mu.Lock()
	lb.refuseUpdates = false
	lb.mu.Unlock()
	start("t2", "10.0.0.12")
	if syncs, updates := lb.calls(); syncs != 2 || updates != 1 || backends() != "[10.0.0.11 10.0.0.12]" {
		t.Fatalf("the next change: %d Syncs, %d Updates, backends %s; want 2, 1, [10.0.0.11 10.0.0.12]", syncs, updates, backends())
	}
}

// Views can arrive out of order: a service that takes another's name before the other's rename
// has come keeps it when the rename comes (the rename takes out only what the renamed service
// still owns).
func TestARenameLeavesTheNameToItsNewOwner(t *testing.T) {
	d := &fakeDNS{}
	c := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: &fakeOverlay{synced: map[string]overlay.Desired{}, local: netip.MustParseAddr("198.18.0.1")}, MTU: 1450,
		Balancer: &fakeBalancer{}, Bridges: &fakeBridges{exists: map[string]bool{}, vips: map[string][]netip.Addr{}}, DNS: d})
	c.SetNetworks([]*api.Network{network(modelNet1, "10.0.0.0/16")})
	view := func(id, name string) *api.ServiceView {
		return &api.ServiceView{Id: id, Name: name, Mode: api.EndpointSpec_MODE_DNSRR, Networks: []string{modelNet1}}
	}
	c.ApplyEndpoints(true, []*api.Endpoint{
		{ServiceId: "s-a", NetworkId: modelNet1, TaskId: "ta", Ip: "10.0.0.11", Vtep: "198.18.0.2", Mac: "02:42:0a:00:00:0b"},
		{ServiceId: "s-b", NetworkId: modelNet1, TaskId: "tb", Ip: "10.0.0.12", Vtep: "198.18.0.2", Mac: "02:42:0a:00:00:0c"},
	}, nil)
	c.ApplyServices(true, []*api.ServiceView{view("s-a", "web"), view("s-b", "api")}, nil)
	c.pass()
	c.ApplyServices(false, []*api.ServiceView{view("s-b", "web")}, nil) // before s-a's rename
	c.pass()
	c.ApplyServices(false, []*api.ServiceView{view("s-a", "auth")}, nil)
	c.pass()
	var got []string
	for _, s := range d.current()[0].Services {
		got = append(got, fmt.Sprint(s.Name, " ", s.Tasks))
	}
	if want := []string{"auth [10.0.0.11]", "web [10.0.0.12]"}; !slices.Equal(got, want) {
		t.Errorf("DNS holds %v, want %v", got, want)
	}
}
