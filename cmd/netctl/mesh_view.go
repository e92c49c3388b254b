package main

// This file owns the desired side of a node's service mesh as netctl sees it: derived from the
// leader's views in an InspectMesh answer with the agent's own pure rules (agent/dataplane's
// MeshState and DNSZones), so that netctl and the node agree on what "desired" means, and the
// names of the services and networks the mesh's IDs stand for. mesh_diff.go compares it with
// what the node reported; the commands print both.

import (
	"cmp"
	"net/netip"

	"github.com/shoal/shoal/agent/dataplane"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/dns"
)

// meshView is one InspectMesh answer with the node's desired load-balancer state worked out.
type meshView struct {
	resp *api.InspectMeshResponse
	// vtep is the node's data-path address, as its agent has it: host-mode ports balance over
	// the endpoints there.
	vtep     netip.Addr
	want     mesh.State
	services map[string]*api.ServiceView // by ID
	networks map[string]*api.Network     // by ID
}

// newMeshView derives what r's node should hold from r's views.
func newMeshView(r *api.InspectMeshResponse) meshView {
	v := meshView{resp: r, services: map[string]*api.ServiceView{}, networks: map[string]*api.Network{}}
	// The agent's LocalVTEP is its data-path address; an unparsable one is the zero Addr, as
	// the agent would have no usable one either.
	v.vtep, _ = netip.ParseAddr(r.GetNode().GetDescription().GetDataPathAddr())
	for _, s := range r.GetServices() {
		v.services[s.GetId()] = s
	}
	for _, n := range r.GetNetworks() {
		v.networks[n.GetId()] = n
	}
	v.want = dataplane.MeshState(dataplane.MeshView{Services: r.GetServices(), Endpoints: r.GetEndpoints(), LocalVTEP: v.vtep})
	return v
}

// nodeName is the node's hostname, or its short ID.
func (v meshView) nodeName() string {
	n := v.resp.GetNode()
	return cmp.Or(n.GetDescription().GetHostname(), cli.ShortID(n.GetId()))
}

// serviceName is the name of service id, its short ID when the views lack it, "none" for "".
func (v meshView) serviceName(id string) string {
	if id == "" {
		return "none"
	}
	return cmp.Or(v.services[id].GetName(), cli.ShortID(id))
}

// networkName is the name of network id, its short ID when the views lack it, "none" for "".
func (v meshView) networkName(id string) string {
	if id == "" {
		return "none"
	}
	return cmp.Or(networkName(v.networks[id]), cli.ShortID(id))
}

// servicePort is the port service id publishes at protocol/published, nil if none.
func (v meshView) servicePort(id, protocol string, published uint32) *api.PortConfig {
	for _, p := range v.services[id].GetPorts() {
		if p.GetPublishedPort() == published && protocolName(p.GetProtocol()) == protocol {
			return p
		}
	}
	return nil
}

// protocolName is a port's protocol as mesh.Protocol spells it ("tcp", "udp").
func protocolName(p api.PortConfig_Protocol) string {
	if p == api.PortConfig_PROTOCOL_UDP {
		return mesh.UDP.String()
	}
	return mesh.TCP.String()
}

// publishModeName is a port's publish mode as mesh.PublishMode spells it.
func publishModeName(m api.PortConfig_PublishMode) string {
	if m == api.PortConfig_PUBLISH_MODE_HOST {
		return mesh.Host.String()
	}
	return mesh.Ingress.String()
}

// desiredRecords are the names the node's DNS server should answer on each of networkIDs, as
// dns.Records has them: network ID → lower-case name → addresses.
func (v meshView) desiredRecords(networkIDs []string) map[string]map[string][]netip.Addr {
	nets := make([]*api.Network, 0, len(networkIDs))
	for _, id := range networkIDs {
		if n := v.networks[id]; n != nil {
			nets = append(nets, n)
		}
	}
	// Where the server listens does not change what it answers.
	noListener := func(string) netip.Addr { return netip.Addr{} }
	return dns.RecordsOf(dataplane.DNSZones(nets, v.resp.GetServices(), v.resp.GetEndpoints(), noListener))
}
