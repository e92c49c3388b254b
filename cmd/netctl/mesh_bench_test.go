package main

// What `netctl check` costs per node at the scale of a big cluster: 2,000 services in endpoint
// mode vip on one network, each with a published port and three running tasks, the node's
// kernel as desired. Run: go test -run '^$' -bench . -benchmem ./cmd/netctl/

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/shoal/shoal/api"
)

const benchServices = 2000

// benchMesh is node-1's answer for benchServices services on front (10.20.0.0/16 here).
func benchMesh() *api.InspectMeshResponse {
	front := frontNetwork()
	front.Spec.Ipam = []*api.IPAMConfig{{Subnet: "10.20.0.0/16", Gateway: "10.20.0.1"}}
	r := &api.InspectMeshResponse{
		Node:     meshNode(idNode1, "node-1", vtep1, api.NodeState_NODE_STATE_READY),
		Networks: []*api.Network{front},
		Kernel:   &api.MeshKernelState{Backend: "nftables", DnsListening: []string{"10.20.0.1:53"}},
	}
	dev := overlayDevice(idFront, 4097, vtep1, []*api.OverlayKernelState_FDBEntry{fdb(floodMAC, vtep2)}, nil)
	r.Overlay = []*api.OverlayKernelState{dev}
	addr := netip.MustParseAddr("10.20.1.0")
	next := func() string { addr = addr.Next(); return addr.String() }
	for i := range benchServices {
		id, name := fmt.Sprintf("svc%022d", i), fmt.Sprintf("svc%d", i)
		vip := next()
		s := &api.ServiceView{Id: id, Name: name, Networks: []string{idFront}, Vips: []*api.ServiceVIP{{NetworkId: idFront, Ip: vip}},
			Ports: []*api.PortConfig{{TargetPort: 80, PublishedPort: uint32(10000 + i)}}}
		r.Services = append(r.Services, s)
		kv := &api.VIPKernelState{ServiceId: id, NetworkId: idFront, Vip: vip}
		kp := &api.PortKernelState{ServiceId: id, Protocol: "tcp", PublishedPort: uint32(10000 + i), Mode: "ingress"}
		r.Kernel.Vips, r.Kernel.Ports = append(r.Kernel.Vips, kv), append(r.Kernel.Ports, kp)
		r.Kernel.DnsRecords = append(r.Kernel.DnsRecords, &api.DNSRecord{NetworkId: idFront, Name: name, Addrs: []string{vip}})
		tasks := &api.DNSRecord{NetworkId: idFront, Name: "tasks." + name}
		for slot := uint64(1); slot <= 3; slot++ {
			ip := next()
			a := netip.MustParseAddr(ip).As4()
			mac := fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3])
			r.Endpoints = append(r.Endpoints, &api.Endpoint{NetworkId: idFront, TaskId: fmt.Sprintf("%s-%d", id, slot), ServiceId: id,
				Slot: slot, NodeId: idNode2, Ip: ip, Mac: mac, Vtep: vtep2})
			kv.Backends = append(kv.Backends, ip)
			kp.Backends = append(kp.Backends, ip+":80")
			tasks.Addrs = append(tasks.Addrs, ip)
			r.Kernel.DnsRecords = append(r.Kernel.DnsRecords, &api.DNSRecord{NetworkId: idFront, Name: fmt.Sprintf("%d.%s", slot, name), Addrs: []string{ip}})
			dev.Fdb = append(dev.Fdb, fdb(mac, vtep2))
			dev.BridgeFdb = append(dev.BridgeFdb, bridgeEntry(mac))
			dev.Neigh = append(dev.Neigh, neigh(ip, mac))
		}
		r.Kernel.DnsRecords = append(r.Kernel.DnsRecords, tasks)
	}
	return r
}

func BenchmarkDiffMesh(b *testing.B) {
	r := benchMesh()
	if diffs := diffMesh(r); len(diffs) != 0 {
		b.Fatalf("the bench's kernel is not as desired: %d differences, the first %s", len(diffs), diffs[0])
	}
	b.ReportAllocs()
	for b.Loop() {
		diffMesh(r)
	}
}
