package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/shoal/shoal/api"
)

func diffLines(diffs []meshDifference) []string {
	var out []string
	for _, d := range diffs {
		out = append(out, d.String())
	}
	return out
}

// dropRecord removes network's record name from r's kernel.
func dropRecord(r *api.InspectMeshResponse, network, name string) {
	r.Kernel.DnsRecords = slices.DeleteFunc(r.Kernel.DnsRecords, func(d *api.DNSRecord) bool {
		return d.GetNetworkId() == network && d.GetName() == name
	})
}

func record(r *api.InspectMeshResponse, network, name string) *api.DNSRecord {
	for _, d := range r.Kernel.DnsRecords {
		if d.GetNetworkId() == network && d.GetName() == name {
			return d
		}
	}
	panic("no record " + name)
}

func TestDiffMesh(t *testing.T) {
	cases := []struct {
		name string
		resp *api.InspectMeshResponse
		want []string
	}{
		{"node-1 as desired", editedMesh(nil), nil},
		{"node-2 as desired", meshResponse(idNode2), nil},
		{"backend order does not matter", editedMesh(func(r *api.InspectMeshResponse) {
			slices.Reverse(r.Kernel.Vips[0].Backends)
			slices.Reverse(r.Kernel.Ports[0].Backends)
			slices.Reverse(record(r, idFront, "tasks.web").Addrs)
		}), nil},

		// VIPs.
		{"a VIP missing", editedMesh(func(r *api.InspectMeshResponse) { r.Kernel.Vips = nil }),
			[]string{"vip 10.20.0.128 (web): missing; want backends [10.20.0.10 10.20.0.129]"}},
		{"an extra VIP of a removed service", editedMesh(func(r *api.InspectMeshResponse) {
			r.Kernel.Vips = append(r.Kernel.Vips, &api.VIPKernelState{ServiceId: "gonesvc000000000000000001", NetworkId: idFront,
				Vip: "10.20.0.200", Backends: []string{"10.20.0.9"}})
		}), []string{"vip 10.20.0.200 (gonesvc00000): not wanted; kernel has backends [10.20.0.9]"}},
		{"a VIP's backends differ", editedMesh(func(r *api.InspectMeshResponse) { r.Kernel.Vips[0].Backends = []string{"10.20.0.10"} }),
			[]string{"vip 10.20.0.128 (web): want backends [10.20.0.10 10.20.0.129], kernel has [10.20.0.10]"}},
		{"a VIP labelled with another network", editedMesh(func(r *api.InspectMeshResponse) { r.Kernel.Vips[0].NetworkId = idBack }),
			[]string{"vip 10.20.0.128 (web): want service web on network front, kernel has service web on network back"}},

		// Published ports.
		{"a port's mode and backends differ", editedMesh(func(r *api.InspectMeshResponse) {
			r.Kernel.Ports[0].Mode = "host"
			r.Kernel.Ports[0].Backends = []string{"10.20.0.10:80", "10.20.0.129:8080"}
		}), []string{
			"port tcp/8080 (web): want mode ingress, kernel has host",
			"port tcp/8080 (web): want backends [10.20.0.10:80 10.20.0.129:80], kernel has [10.20.0.10:80 10.20.0.129:8080]",
		}},
		{"a port missing, another extra", editedMesh(func(r *api.InspectMeshResponse) {
			r.Kernel.Ports[1] = &api.PortKernelState{ServiceId: idAPI, Protocol: "udp", PublishedPort: 53, Mode: "ingress"}
		}), []string{
			"port tcp/9000 (api): missing; want host, backends [10.30.0.5:9000]",
			"port udp/53 (api): not wanted; kernel has ingress, backends []",
		}},

		// DNS.
		{"DNS records missing, extra and different", editedMesh(func(r *api.InspectMeshResponse) {
			dropRecord(r, idFront, "2.web")
			r.Kernel.DnsRecords = append(r.Kernel.DnsRecords, &api.DNSRecord{NetworkId: idFront, Name: "old", Addrs: []string{"10.20.0.99"}})
			record(r, idBack, "tasks.api").Addrs = []string{"10.30.0.6"}
		}), []string{
			"dns tasks.api (back): want [10.30.0.5], the server answers [10.30.0.6]",
			"dns 2.web (front): missing; want [10.20.0.129]",
			"dns old (front): not wanted; the server answers [10.20.0.99]",
		}},
		{"a DNS listener missing, another stale", editedMesh(func(r *api.InspectMeshResponse) {
			r.Kernel.DnsListening = []string{"10.20.0.1:53", "10.99.0.1:53"}
		}), []string{
			"dns listener 10.30.0.1 (back): missing; the network's bridge is on the node and its containers ask its gateway",
			"dns listener 10.99.0.1:53: not wanted; no network has this gateway",
		}},
		{"a network with neither device nor listener: its records are not compared", func() *api.InspectMeshResponse {
			r := meshResponse(idNode2)
			dropRecord(r, idBack, "api")
			return r
		}(), nil},
		{"a network with a listener but no device: its records are compared", func() *api.InspectMeshResponse {
			r := meshResponse(idNode2)
			r.Kernel.DnsListening = append(r.Kernel.DnsListening, "10.30.0.1:53")
			dropRecord(r, idBack, "api")
			return r
		}(), []string{"dns api (back): missing; want [10.30.0.5]"}},

		// Overlay.
		{"an overlay entry missing, a device down", editedMesh(func(r *api.InspectMeshResponse) {
			r.Overlay[0].Neigh = nil
			r.Overlay[1].Up = false
		}), []string{
			"overlay device shxbacknet000 (back): down, want up",
			"overlay neighbour 10.20.0.129 (front): missing; want 02:42:0a:14:00:81",
		}},
		{"an FDB entry at the wrong VTEP, a stale flood entry", editedMesh(func(r *api.InspectMeshResponse) {
			r.Overlay[0].Fdb[1].Dst = "198.18.0.3"
			r.Overlay[0].Fdb = append(r.Overlay[0].Fdb, fdb(floodMAC, "198.18.0.9"))
		}), []string{
			"overlay fdb 00:00:00:00:00:00 (front): not wanted; kernel has 198.18.0.9",
			"overlay fdb 02:42:0a:14:00:81 (front): want 198.18.0.2, kernel has 198.18.0.3",
		}},
		{"a bridge entry learnt, a local one not wanted", editedMesh(func(r *api.InspectMeshResponse) {
			r.Overlay[0].BridgeFdb[0].Kind = bridgeLearnt
			r.Overlay[0].BridgeFdb = append(r.Overlay[0].BridgeFdb, &api.OverlayKernelState_BridgeEntry{Mac: "02:42:0a:14:00:63", Kind: bridgeLocal})
		}), []string{
			"overlay bridge fdb 02:42:0a:14:00:63 (front): not wanted; kernel has local",
			"overlay bridge fdb 02:42:0a:14:00:81 (front): want static, kernel has learnt",
		}},
		{"a bridge entry missing", editedMesh(func(r *api.InspectMeshResponse) { r.Overlay[0].BridgeFdb = nil }),
			[]string{"overlay bridge fdb 02:42:0a:14:00:81 (front): missing; want static"}},
		{"no device on a network the node runs a task of", editedMesh(func(r *api.InspectMeshResponse) { r.Overlay = r.Overlay[:1] }),
			[]string{"overlay device shxbacknet000 (back): missing; the node runs a task of the network"}},
		{"a device of a network the cluster removed", editedMesh(func(r *api.InspectMeshResponse) {
			r.Overlay = append(r.Overlay, overlayDevice("gonenet000000000000000001", 5000, vtep1, nil, nil))
		}), []string{"overlay device shxgonenet000 (gonenet00000): not wanted; the cluster has no such network"}},
		{"a node without tasks needs the device of an ingress port's network", editedMesh(func(r *api.InspectMeshResponse) {
			r.Node = meshNode("node3id000000000000000003", "node-3", "198.18.0.3", api.NodeState_NODE_STATE_READY)
			r.Kernel.Ports = r.Kernel.Ports[:1] // the host port's task is not here
			r.Kernel.DnsListening, r.Overlay = nil, nil
		}), []string{"overlay device shxfrontnet00 (front): missing; an ingress port balances over the network's tasks"}},

		// The report itself.
		{"the load balancer not read: DNS and overlay still compared", editedMesh(func(r *api.InspectMeshResponse) {
			r.Kernel.Error = "read the load balancer: permission denied"
			r.Kernel.Vips, r.Kernel.Ports = nil, nil
			dropRecord(r, idFront, "web")
		}), []string{
			"mesh: not read: read the load balancer: permission denied",
			"dns web (front): missing; want [10.20.0.128]",
		}},
		{"no mesh on the node: the overlay still compared", editedMesh(func(r *api.InspectMeshResponse) {
			r.Kernel = &api.MeshKernelState{Error: "this node runs no service mesh"}
			r.Overlay[1].Learning = true
		}), []string{
			"mesh: not read: this node runs no service mesh",
			"overlay device shxbacknet000 (back): learning on, want off",
		}},
		{"the node's own object-level differences", editedMesh(func(r *api.InspectMeshResponse) {
			r.Kernel.LbDifferences = []string{"vip 10.20.0.128 (service s1): want element goto vip-10.20.0.128, got missing"}
		}), []string{"kernel: vip 10.20.0.128 (service s1): want element goto vip-10.20.0.128, got missing"}},
		{"no mesh report", editedMesh(func(r *api.InspectMeshResponse) { r.Kernel = nil }),
			[]string{"mesh: not read: the node reported no mesh state"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := diffLines(diffMesh(tc.resp)); !slices.Equal(got, tc.want) {
				t.Errorf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestValidateDNSName(t *testing.T) {
	for _, ok := range []string{"web", "tasks.web", "1.web.", "example.com", strings.Repeat("a", 63) + ".b", strings.Repeat("a.", 127)} {
		if err := validateDNSName(ok); err != nil {
			t.Errorf("validateDNSName(%q) = %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                        `invalid NAME "": empty`,
		".":                       `invalid NAME ".": empty`,
		"a..b":                    `invalid NAME "a..b": an empty label (two dots in a row, or a leading dot)`,
		"we b":                    `invalid NAME "we b": holds a space or control character`,
		strings.Repeat("a", 64):   `invalid NAME "` + strings.Repeat("a", 64) + `": label "` + strings.Repeat("a", 64) + `" is 64 characters, longer than 63`,
		strings.Repeat("ab.", 85): `invalid NAME "` + strings.Repeat("ab.", 85) + `": 254 characters, longer than 253`,
	} {
		if err := validateDNSName(name); err == nil || err.Error() != want {
			t.Errorf("validateDNSName(%q) = %v, want %s", name, err, want)
		}
	}
}
