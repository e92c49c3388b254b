package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/dns"
)

func draining(ep *api.Endpoint) *api.Endpoint { ep.Draining = true; return ep }

func svcEP(svc, network, task, ip, vtep string, slot uint64) *api.Endpoint {
	return &api.Endpoint{ServiceId: svc, NetworkId: network, TaskId: task, Ip: ip, Vtep: vtep, Slot: slot}
}

// meshFixture: "web" (vip mode, VIP 10.0.0.2 on net1, ports 8080→80 ingress and 9090→90/udp
// host) with tasks on two nodes; "db" (dnsrr) with one task; "lonely" with no network.
func meshFixture() ([]*api.ServiceView, []*api.Endpoint) {
	services := []*api.ServiceView{
		{Id: "s-web", Name: "web", Mode: api.EndpointSpec_MODE_VIP, Networks: []string{"net1", "net2"},
			Vips: []*api.ServiceVIP{{NetworkId: "net1", Ip: "10.0.0.2"}, {NetworkId: "net2", Ip: "10.1.0.2"}},
			Ports: []*api.PortConfig{
				{TargetPort: 80, PublishedPort: 8080},
				{TargetPort: 90, PublishedPort: 9090, Protocol: api.PortConfig_PROTOCOL_UDP, PublishMode: api.PortConfig_PUBLISH_MODE_HOST},
				{TargetPort: 70}, // not published
			}},
		{Id: "s-db", Name: "db", Mode: api.EndpointSpec_MODE_DNSRR, Networks: []string{"net1"}},
		{Id: "s-lonely", Name: "lonely", Ports: []*api.PortConfig{{TargetPort: 80, PublishedPort: 8081}}},
	}
	eps := []*api.Endpoint{
		svcEP("s-web", "net1", "t2", "10.0.0.12", "198.18.0.2", 2),
		svcEP("s-web", "net1", "t1", "10.0.0.11", "198.18.0.1", 1),
		svcEP("s-web", "net2", "t1", "10.1.0.11", "198.18.0.1", 1),
		svcEP("s-db", "net1", "t3", "10.0.0.13", "198.18.0.2", 1),
		draining(svcEP("s-web", "net1", "t9", "10.0.0.19", "198.18.0.1", 9)), // to stop: no VIP, port or name
	}
	return services, eps
}

func renderState(st mesh.State) []string {
	var out []string
	for _, v := range st.VIPs {
		out = append(out, fmt.Sprintf("vip %s %s %s→%v", v.Name, v.Network, v.Addr, v.Backends))
	}
	for _, p := range st.Ports {
		out = append(out, fmt.Sprintf("port %s %s %s→%v", p.Name, p.Key(), p.Mode, p.Backends))
	}
	return append(out, "snat "+st.SNAT.String())
}

func TestMeshState(t *testing.T) {
	services, eps := meshFixture()
	for _, tc := range []struct {
		node string
		want []string
	}{
		{"198.18.0.1", []string{
			"vip web net1 10.0.0.2→[10.0.0.11 10.0.0.12]",
			"vip web net2 10.1.0.2→[10.1.0.11]",
			"port web tcp/8080 ingress→[10.0.0.11:80 10.0.0.12:80]",
			"port web udp/9090 host→[10.0.0.11:90]",
			"snat 198.18.0.1"}},
		{"198.18.0.3", []string{ // no task here: no host-mode port
			"vip web net1 10.0.0.2→[10.0.0.11 10.0.0.12]",
			"vip web net2 10.1.0.2→[10.1.0.11]",
			"port web tcp/8080 ingress→[10.0.0.11:80 10.0.0.12:80]",
			"snat 198.18.0.3"}},
	} {
		st := MeshState(MeshView{Services: services, Endpoints: eps, LocalVTEP: netip.MustParseAddr(tc.node)})
		if got := renderState(st); !slices.Equal(got, tc.want) {
			t.Errorf("node %s: MeshState =\n%s\nwant\n%s", tc.node, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
		if err := st.Validate(); err != nil {
			t.Errorf("node %s: MeshState is not valid: %v", tc.node, err)
		}
	}
	if got, want := IngressNetworks(services), []string{"net1"}; !slices.Equal(got, want) {
		t.Errorf("IngressNetworks = %v, want %v", got, want)
	}
	if got, want := fmt.Sprint(BridgeVIPs(services)), "map[net1:[10.0.0.2] net2:[10.1.0.2]]"; got != want {
		t.Errorf("BridgeVIPs = %s, want %s", got, want)
	}
}

func TestDNSZones(t *testing.T) {
	services, eps := meshFixture()
	nets := []*api.Network{
		{Id: "net2", Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "back"}}},
		{Id: "net1", Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "front"}}},
	}
	listen := func(id string) netip.Addr {
		if id == "net1" {
			return netip.MustParseAddr("10.0.0.1")
		}
		return netip.Addr{} // no bridge here
	}
	zones := DNSZones(nets, services, eps, listen)
	render := func(z dns.Zone) string {
		var parts []string
		for _, s := range z.Services {
			var slots []string
			for _, k := range slices.Sorted(func(yield func(uint64) bool) {
				for k := range s.Slots {
					if !yield(k) {
						return
					}
				}
			}) {
				slots = append(slots, fmt.Sprintf("%d=%s", k, s.Slots[k]))
			}
			parts = append(parts, fmt.Sprintf("%s vip=%s tasks=%v slots=%v", s.Name, s.VIP, s.Tasks, slots))
		}
		return fmt.Sprintf("%s(%s)@%s: %s", z.Network, z.Name, z.Listen, strings.Join(parts, "; "))
	}
	var got []string
	for _, z := range zones {
		got = append(got, render(z))
	}
	want := []string{
		"net1(front)@10.0.0.1: db vip=invalid IP tasks=[10.0.0.13] slots=[1=10.0.0.13]; web vip=10.0.0.2 tasks=[10.0.0.11 10.0.0.12] slots=[1=10.0.0.11 2=10.0.0.12]",
		"net2(back)@invalid IP: web vip=10.1.0.2 tasks=[10.1.0.11] slots=[1=10.1.0.11]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("DNSZones =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A service DNS cannot name ("api.v2") and an IPv6 VIP are left out of the zones, so the DNS
// server, which refuses a whole Sync for one bad entry, keeps serving the others.
func TestDNSZonesLeaveOutWhatDNSCannotServe(t *testing.T) {
	services := []*api.ServiceView{
		{Id: "s1", Name: "api.v2", Mode: api.EndpointSpec_MODE_VIP, Networks: []string{"net1"},
			Vips: []*api.ServiceVIP{{NetworkId: "net1", Ip: "10.0.0.2"}}},
		{Id: "s2", Name: "web", Mode: api.EndpointSpec_MODE_VIP, Networks: []string{"net1"},
			Vips: []*api.ServiceVIP{{NetworkId: "net1", Ip: "fd00::2"}}},
	}
	nets := []*api.Network{{Id: "net1", Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "front"}}}}
	zones := DNSZones(nets, services, nil, func(string) netip.Addr { return netip.MustParseAddr("10.0.0.1") })
	if len(zones) != 1 || len(zones[0].Services) != 1 || zones[0].Services[0].Name != "web" || zones[0].Services[0].VIP.IsValid() {
		t.Fatalf("zones = %+v, want net1 with web alone, without its IPv6 VIP", zones)
	}
	srv, err := dns.New(dns.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	zones[0].Listen = netip.Addr{} // records only: no socket needed
	if err := srv.Sync(zones); err != nil {
		t.Fatalf("the DNS server refuses the zones: %v", err)
	}
}
