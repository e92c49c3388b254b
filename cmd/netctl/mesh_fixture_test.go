package main

import (
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// The mesh fixture: networks front (10.20.0.0/24, gateway 10.20.0.1) and back (10.30.0.0/24,
// gateway 10.30.0.1); service web in endpoint mode vip (VIP 10.20.0.128 on front, tcp/8080 →
// 80 in ingress mode) with slot 1 on node-1 (10.20.0.10) and slot 2 on node-2 (10.20.0.129);
// global service api in endpoint mode dnsrr on back (tcp/9000 in host mode) on node-1
// (10.30.0.5). Each node's kernel below is written out by hand as the cluster wants it, so that
// the desired side is checked against an independent statement of it.
const (
	vtep1 = "198.18.0.1"
	vtep2 = "198.18.0.2"
	mac10 = "02:42:0a:14:00:0a" // 10.20.0.10
	mac81 = "02:42:0a:14:00:81" // 10.20.0.129
	mac05 = "02:42:0a:1e:00:05" // 10.30.0.5
)

func meshNode(id, host, vtep string, state api.NodeState) *api.Node {
	return &api.Node{Id: id, Description: &api.NodeDescription{Hostname: host, DataPathAddr: vtep},
		Status: &api.NodeStatus{State: state, Addr: vtep + ":4242"}}
}

func meshServices() []*api.ServiceView {
	return []*api.ServiceView{
		{Id: idWeb, Name: "web", Mode: api.EndpointSpec_MODE_VIP, Networks: []string{idFront},
			Vips:  []*api.ServiceVIP{{NetworkId: idFront, Ip: "10.20.0.128"}},
			Ports: []*api.PortConfig{{Protocol: api.PortConfig_PROTOCOL_TCP, TargetPort: 80, PublishedPort: 8080}}},
		{Id: idAPI, Name: "api", Mode: api.EndpointSpec_MODE_DNSRR, Networks: []string{idBack},
			Ports: []*api.PortConfig{{Protocol: api.PortConfig_PROTOCOL_TCP, TargetPort: 9000, PublishedPort: 9000,
				PublishMode: api.PortConfig_PUBLISH_MODE_HOST}}},
	}
}

func meshEndpoints() []*api.Endpoint {
	return []*api.Endpoint{
		{NetworkId: idFront, TaskId: "webtask1", ServiceId: idWeb, Slot: 1, NodeId: idNode1, Ip: "10.20.0.10", Mac: mac10, Vtep: vtep1},
		{NetworkId: idFront, TaskId: "webtask2", ServiceId: idWeb, Slot: 2, NodeId: idNode2, Ip: "10.20.0.129", Mac: mac81, Vtep: vtep2},
		{NetworkId: idBack, TaskId: "apitask1", ServiceId: idAPI, NodeId: idNode1, Ip: "10.30.0.5", Mac: mac05, Vtep: vtep1},
	}
}

// overlayDevice is network id's device on the node at local, programmed as desired, with
// fdb and neigh entries.
func overlayDevice(id string, vni uint32, local string, fdb []*api.OverlayKernelState_FDBEntry, neigh []*api.OverlayKernelState_NeighEntry) *api.OverlayKernelState {
	k := &api.OverlayKernelState{
		NetworkId: id, Device: deviceOf(id), DeviceExists: true, Vni: vni, Local: local, Port: vxlanPort,
		Mtu: 1450, Master: bridgeOf(id), Up: true, Proxy: true, Fdb: fdb, Neigh: neigh,
	}
	for _, e := range fdb {
		if e.GetMac() != floodMAC {
			k.BridgeFdb = append(k.BridgeFdb, bridgeEntry(e.GetMac()))
		}
	}
	return k
}

// bridgeEntry is the bridge's static entry of a remote MAC on the VXLAN port, as Sync leaves it.
func bridgeEntry(mac string) *api.OverlayKernelState_BridgeEntry {
	return &api.OverlayKernelState_BridgeEntry{Mac: mac, Kind: bridgeStatic}
}

func fdb(mac, dst string) *api.OverlayKernelState_FDBEntry {
	return &api.OverlayKernelState_FDBEntry{Mac: mac, Dst: dst, Permanent: true}
}

func neigh(ip, mac string) *api.OverlayKernelState_NeighEntry {
	return &api.OverlayKernelState_NeighEntry{Ip: ip, Mac: mac, Permanent: true}
}

// meshResponse is InspectMesh's answer for node 1 or 2 (with overlay), its kernel as desired.
func meshResponse(nodeID string) *api.InspectMeshResponse {
	r := &api.InspectMeshResponse{
		Services: meshServices(), Endpoints: meshEndpoints(), Networks: []*api.Network{frontNetwork(), backNetwork()},
	}
	webVIP := &api.VIPKernelState{ServiceId: idWeb, NetworkId: idFront, Vip: "10.20.0.128", Backends: []string{"10.20.0.10", "10.20.0.129"}}
	webPort := &api.PortKernelState{ServiceId: idWeb, Protocol: "tcp", PublishedPort: 8080, Mode: "ingress",
		Backends: []string{"10.20.0.10:80", "10.20.0.129:80"}}
	// The server of every node keeps the zone of every network, served or not.
	records := []*api.DNSRecord{
		{NetworkId: idBack, Name: "api", Addrs: []string{"10.30.0.5"}},
		{NetworkId: idBack, Name: "tasks.api", Addrs: []string{"10.30.0.5"}},
		{NetworkId: idFront, Name: "1.web", Addrs: []string{"10.20.0.10"}},
		{NetworkId: idFront, Name: "2.web", Addrs: []string{"10.20.0.129"}},
		{NetworkId: idFront, Name: "tasks.web", Addrs: []string{"10.20.0.10", "10.20.0.129"}},
		{NetworkId: idFront, Name: "web", Addrs: []string{"10.20.0.128"}},
	}
	switch nodeID {
	case idNode1:
		r.Node = meshNode(idNode1, "node-1", vtep1, api.NodeState_NODE_STATE_READY)
		r.Kernel = &api.MeshKernelState{
			Backend: "nftables",
			Vips:    []*api.VIPKernelState{webVIP},
			Ports: []*api.PortKernelState{webPort, {ServiceId: idAPI, Protocol: "tcp", PublishedPort: 9000, Mode: "host",
				Backends: []string{"10.30.0.5:9000"}}},
			DnsRecords:   records,
			DnsListening: []string{"10.20.0.1:53", "10.30.0.1:53"},
		}
		r.Overlay = []*api.OverlayKernelState{
			overlayDevice(idFront, 4097, vtep1, []*api.OverlayKernelState_FDBEntry{fdb(floodMAC, vtep2), fdb(mac81, vtep2)},
				[]*api.OverlayKernelState_NeighEntry{neigh("10.20.0.129", mac81)}),
			overlayDevice(idBack, 4098, vtep1, nil, nil),
		}
	case idNode2:
		r.Node = meshNode(idNode2, "node-2", vtep2, api.NodeState_NODE_STATE_READY)
		r.Kernel = &api.MeshKernelState{
			Backend: "nftables", Vips: []*api.VIPKernelState{webVIP}, Ports: []*api.PortKernelState{webPort},
			DnsRecords: records, DnsListening: []string{"10.20.0.1:53"},
		}
		r.Overlay = []*api.OverlayKernelState{
			overlayDevice(idFront, 4097, vtep2, []*api.OverlayKernelState_FDBEntry{fdb(floodMAC, vtep1), fdb(mac10, vtep1)},
				[]*api.OverlayKernelState_NeighEntry{neigh("10.20.0.10", mac10)}),
		}
	default:
		panic("meshResponse: no fixture for node " + nodeID)
	}
	return r
}

// editedMesh is node 1's answer with edit applied.
func editedMesh(edit func(r *api.InspectMeshResponse)) *api.InspectMeshResponse {
	r := meshResponse(idNode1)
	if edit != nil {
		edit(r)
	}
	return proto.Clone(r).(*api.InspectMeshResponse)
}
