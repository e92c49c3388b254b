package dataplane

// This file owns what the service mesh of one node should hold, derived from the cluster's views
// alone (services, endpoints, networks): the VIPs and published ports its load balancer programs,
// the VIP addresses each bridge holds, and the names its DNS server answers. It is pure, so
// netctl computes a node's desired mesh from the leader's views with the same rules the node's
// agent programs it with.

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/dns"
)

// MeshView is the part of the cluster's views the mesh derives from.
type MeshView struct {
	Services  []*api.ServiceView
	Endpoints []*api.Endpoint
	// LocalVTEP is the node's data-path address: host-mode ports balance over the endpoints there,
	// and ingress connections leave toward their backends from it.
	LocalVTEP netip.Addr
}

// serviceEndpoints indexes the serving endpoints by service and network, sorted by address. A
// draining endpoint (its task is to stop) gets no new connection and no name: the overlay alone
// keeps it, for the connections it has.
func serviceEndpoints(eps []*api.Endpoint) map[[2]string][]*api.Endpoint {
	out := map[[2]string][]*api.Endpoint{}
	for _, ep := range eps {
		if ep.GetDraining() {
			continue
		}
		k := [2]string{ep.GetServiceId(), ep.GetNetworkId()}
		out[k] = append(out[k], ep)
	}
	for _, list := range out {
		slices.SortFunc(list, func(a, b *api.Endpoint) int { return cmp.Compare(addrOf(a).String(), addrOf(b).String()) })
	}
	return out
}

func addrOf(ep *api.Endpoint) netip.Addr {
	a, err := netip.ParseAddr(ep.GetIp())
	if err != nil || !a.Is4() {
		return netip.Addr{}
	}
	return a
}

// backendAddrs are the valid IPv4 addresses of eps, once each.
func backendAddrs(eps []*api.Endpoint) []netip.Addr {
	var out []netip.Addr
	for _, ep := range eps {
		if a := addrOf(ep); a.IsValid() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// MeshState is the load balancer's desired state on the node: every VIP of every service in vip
// mode, balanced over its tasks' addresses on the VIP's network; every published port,
// balanced over the service's tasks on its first network (all of them for ingress, those on this
// node for host mode).
func MeshState(v MeshView) mesh.State {
	byService := serviceEndpoints(v.Endpoints)
	st := mesh.State{SNAT: v.LocalVTEP}
	for _, s := range sortedServices(v.Services) {
		if s.GetMode() == api.EndpointSpec_MODE_VIP {
			for _, vip := range s.GetVips() {
				a, err := netip.ParseAddr(vip.GetIp())
				if err != nil || !a.Is4() {
					continue
				}
				st.VIPs = append(st.VIPs, mesh.VIP{
					Service: s.GetId(), Name: s.GetName(), Network: vip.GetNetworkId(), Addr: a,
					Backends: backendAddrs(byService[[2]string{s.GetId(), vip.GetNetworkId()}]),
				})
			}
		}
		if len(s.GetNetworks()) == 0 {
			continue // its tasks have no address to send a published port's connections to
		}
		eps := byService[[2]string{s.GetId(), s.GetNetworks()[0]}]
		for _, p := range s.GetPorts() {
			if p.GetPublishedPort() == 0 || p.GetPublishedPort() > 65535 || p.GetTargetPort() > 65535 {
				continue
			}
			port := mesh.Port{Service: s.GetId(), Name: s.GetName(), Protocol: mesh.TCP, Published: uint16(p.GetPublishedPort()), Mode: mesh.Ingress}
			if p.GetProtocol() == api.PortConfig_PROTOCOL_UDP {
				port.Protocol = mesh.UDP
			}
			local := p.GetPublishMode() == api.PortConfig_PUBLISH_MODE_HOST
			if local {
				port.Mode = mesh.Host
			}
			for _, ep := range eps {
				a := addrOf(ep)
				if !a.IsValid() || (local && ep.GetVtep() != v.LocalVTEP.String()) {
					continue
				}
				port.Backends = append(port.Backends, mesh.Backend{Addr: a, Port: uint16(p.GetTargetPort())})
			}
			if local && len(port.Backends) == 0 {
				continue // host mode: only nodes running a task open the port
			}
			st.Ports = append(st.Ports, port)
		}
	}
	return st
}

// IngressNetworks are the networks the node must reach even with no task of its own on them: the
// first network of every service publishing a port in ingress mode.
func IngressNetworks(services []*api.ServiceView) []string {
	set := map[string]bool{}
	for _, s := range services {
		if len(s.GetNetworks()) == 0 {
			continue
		}
		for _, p := range s.GetPorts() {
			if p.GetPublishedPort() != 0 && p.GetPublishMode() == api.PortConfig_PUBLISH_MODE_INGRESS {
				set[s.GetNetworks()[0]] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// BridgeVIPs are the VIPs of each network, by network ID: what its bridge holds on every node.
func BridgeVIPs(services []*api.ServiceView) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, s := range services {
		if s.GetMode() != api.EndpointSpec_MODE_VIP {
			continue
		}
		for _, vip := range s.GetVips() {
			if a, err := netip.ParseAddr(vip.GetIp()); err == nil && a.Is4() {
				out[vip.GetNetworkId()] = append(out[vip.GetNetworkId()], a)
			}
		}
	}
	for _, list := range out {
		slices.SortFunc(list, netip.Addr.Compare)
	}
	return out
}

// DNSZones are the names the node's DNS server answers on each network: every service attached
// to it, by name, with its VIP there (vip mode), its RUNNING tasks' addresses and its slots'.
// listen gives the address the server listens on for a network (its gateway, where the node has
// the network's bridge); a network it has none for gets a zone with no listener.
func DNSZones(networks []*api.Network, services []*api.ServiceView, eps []*api.Endpoint, listen func(networkID string) netip.Addr) []dns.Zone {
	byService := serviceEndpoints(eps)
	sorted := sortedServices(services)
	var zones []dns.Zone
	for _, n := range networks {
		z := dns.Zone{Network: n.GetId(), Name: n.GetSpec().GetAnnotations().GetName(), Listen: listen(n.GetId())}
		for _, s := range sorted {
			if ds, ok := dnsService(n.GetId(), s, byService); ok {
				z.Services = append(z.Services, ds)
			}
		}
		zones = append(zones, z)
	}
	slices.SortFunc(zones, func(a, b dns.Zone) int { return strings.Compare(a.Network, b.Network) })
	return zones
}

// dnsService is service s's records in the zone of network networkID, from the serving endpoints
// indexed by serviceEndpoints; false when s is not on the network or has a name DNS cannot hold
// ("api.v2"): such a service has no records, and must not stop the other services' (the server
// refuses a whole Sync with one bad name).
func dnsService(networkID string, s *api.ServiceView, byService map[[2]string][]*api.Endpoint) (dns.Service, bool) {
	if !slices.Contains(s.GetNetworks(), networkID) || !dns.ValidName(s.GetName()) {
		return dns.Service{}, false
	}
	ds := dns.Service{Name: s.GetName()}
	if s.GetMode() == api.EndpointSpec_MODE_VIP {
		for _, vip := range s.GetVips() {
			if a, err := netip.ParseAddr(vip.GetIp()); err == nil && a.Is4() && vip.GetNetworkId() == networkID {
				ds.VIP = a
			}
		}
	}
	list := byService[[2]string{s.GetId(), networkID}]
	ds.Tasks = backendAddrs(list)
	for _, ep := range list {
		if a := addrOf(ep); a.IsValid() && ep.GetSlot() > 0 {
			if ds.Slots == nil {
				ds.Slots = map[uint64]netip.Addr{}
			}
			ds.Slots[ep.GetSlot()] = a
		}
	}
	return ds, true
}

func sortedServices(list []*api.ServiceView) []*api.ServiceView {
	out := slices.Clone(list)
	slices.SortFunc(out, func(a, b *api.ServiceView) int { return strings.Compare(a.GetId(), b.GetId()) })
	return out
}

// DNSAddr is where a node's DNS server listens for network n's containers, and so what their
// resolv.conf names: n's IPv4 gateway, the same on every node; the zero Addr when n has none.
func DNSAddr(n *api.Network) netip.Addr {
	gws, err := cni.Gateways(n)
	if err != nil {
		return netip.Addr{}
	}
	for _, gw := range gws {
		if gw.Addr().Is4() {
			return gw.Addr()
		}
	}
	return netip.Addr{}
}
