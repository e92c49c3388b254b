package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

const idNode3, idNode4 = "node3id000000000000000003", "node4id000000000000000004"

// meshFake is a cluster of node-1 and node-2 (READY, their meshes as desired), node-3 (DOWN)
// and node-4 (DISCONNECTED).
func meshFake() *fakeControl {
	f := newFake()
	f.nodes = []*api.Node{
		meshNode(idNode1, "node-1", vtep1, api.NodeState_NODE_STATE_READY),
		meshNode(idNode2, "node-2", vtep2, api.NodeState_NODE_STATE_READY),
		meshNode(idNode3, "node-3", "198.18.0.3", api.NodeState_NODE_STATE_DOWN),
		meshNode(idNode4, "node-4", "198.18.0.4", api.NodeState_NODE_STATE_DISCONNECTED),
	}
	f.meshes = map[string]*api.InspectMeshResponse{idNode1: meshResponse(idNode1), idNode2: meshResponse(idNode2)}
	f.dnsAnswers = map[string]*api.DNSAnswer{
		"web":         {Addrs: []string{"10.20.0.128"}, Rcode: "NOERROR"},
		"tasks.web":   {Addrs: []string{"10.20.0.129", "10.20.0.10"}, Rcode: "NOERROR"},
		"example.com": {Addrs: []string{"93.184.215.14"}, Rcode: "NOERROR", Forwarded: true},
		"broken":      {Error: "no zone for network " + idFront},
	}
	return f
}

// webVIPDiffers makes node-2's load balancer lack a backend of web's VIP and hold a stale VIP.
func webVIPDiffers(f *fakeControl) {
	k := f.meshes[idNode2].Kernel
	k.Vips[0].Backends = []string{"10.20.0.10"}
	k.Vips = append(k.Vips, &api.VIPKernelState{ServiceId: "gonesvc000000000000000001", NetworkId: idFront, Vip: "10.20.0.200"})
}

func TestVIPList(t *testing.T) {
	f := meshFake()
	webVIPDiffers(f)
	sock := serve(t, f)

	res := netctl(t, sock, "vip", "ls")
	res.Check(t, 0, `SERVICE   NETWORK   VIP           BACKENDS                    PROGRAMMED                  STATE
web       front     10.20.0.128   2: 10.20.0.10,10.20.0.129   2: 10.20.0.10,10.20.0.129   ok
`, "")
	if reqs := f.meshRequests(); len(reqs) != 1 || reqs[0].GetNode() != "" || reqs[0].GetOverlay() || reqs[0].GetDnsName() != "" {
		t.Errorf("InspectMesh asked %v, want the manager's node, no overlay, no lookup", reqs)
	}

	res = netctl(t, sock, "vip", "ls", "--node", "node-2")
	res.Check(t, 0, `SERVICE        NETWORK   VIP           BACKENDS                    PROGRAMMED      STATE
gonesvc00000   front     10.20.0.200   -                           0               differs
web            front     10.20.0.128   2: 10.20.0.10,10.20.0.129   1: 10.20.0.10   differs
`, "")

	res = netctl(t, sock, "vip", "ls", "--node", "node-2", "--format", "json")
	var rows []vipRow
	if err := json.Unmarshal([]byte(res.Stdout), &rows); err != nil || res.Code != 0 {
		t.Fatalf("exit %d, %v:\n%s", res.Code, err, res.Stdout)
	}
	if len(rows) != 2 || rows[1].ServiceID != idWeb || rows[1].NetworkID != idFront ||
		!slices.Equal(rows[1].Programmed, []string{"10.20.0.10"}) ||
		!slices.Equal(rows[1].Differences, []string{"want backends [10.20.0.10 10.20.0.129], kernel has [10.20.0.10]"}) ||
		rows[0].Backends != nil || rows[0].Programmed == nil {
		t.Errorf("JSON rows %+v", rows)
	}
	if !strings.Contains(res.Stdout, `"backends": null`) || !strings.Contains(res.Stdout, `"programmed": []`) {
		t.Errorf("JSON does not tell a VIP not wanted (null) from one without backends ([]):\n%s", res.Stdout)
	}

	// A load balancer that could not be read: the table, then the error.
	f.meshes[idNode1].Kernel = &api.MeshKernelState{Backend: "nftables", Error: "read the load balancer: permission denied"}
	res = netctl(t, sock, "vip", "ls")
	res.Check(t, 1, `SERVICE   NETWORK   VIP           BACKENDS                    PROGRAMMED   STATE
web       front     10.20.0.128   2: 10.20.0.10,10.20.0.129   -            differs
`, "Error: node node-1: read the load balancer: permission denied: PROGRAMMED is unknown or incomplete\n")

	res = netctl(t, sock, "vip", "ls", "--node", "node-9")
	res.Check(t, 1, "", "Error: inspect the mesh of node node-9: node \"node-9\" not found\n")
}

func TestFormatBackends(t *testing.T) {
	many := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8"}
	for _, tc := range []struct {
		list []string
		want string
	}{
		{nil, "-"},
		{[]string{}, "0"},
		{many[:1], "1: 10.0.0.1"},
		{many[:6], "6: 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,10.0.0.6"},
		{many, "8: 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,10.0.0.6,+2 more"},
	} {
		if got := formatBackends(tc.list); got != tc.want {
			t.Errorf("formatBackends(%q) = %q, want %q", tc.list, got, tc.want)
		}
	}
}

func TestIngressList(t *testing.T) {
	f := meshFake()
	sock := serve(t, f)

	res := netctl(t, sock, "ingress", "ls")
	res.Check(t, 0, `SERVICE   PROTOCOL   PUBLISHED   TARGET   MODE      BACKENDS                          PROGRAMMED                        STATE
api       tcp        9000        9000     host      1: 10.30.0.5:9000                 1: 10.30.0.5:9000                 ok
web       tcp        8080        80       ingress   2: 10.20.0.10:80,10.20.0.129:80   2: 10.20.0.10:80,10.20.0.129:80   ok
`, "")

	// node-2 runs no task of api: its host port is not open there. Its ingress port lacks a
	// backend, and a port of nothing is left over.
	k := f.meshes[idNode2].Kernel
	k.Ports[0].Backends = k.Ports[0].Backends[:1]
	k.Ports = append(k.Ports, &api.PortKernelState{ServiceId: "gonesvc000000000000000001", Protocol: "udp", PublishedPort: 53, Mode: "ingress"})
	res = netctl(t, sock, "ingress", "ls", "--node", "node-2")
	res.Check(t, 0, `SERVICE        PROTOCOL   PUBLISHED   TARGET   MODE      BACKENDS                          PROGRAMMED         STATE
api            tcp        9000        9000     host      -                                 -                  ok
gonesvc00000   udp        53          -        ingress   -                                 0                  differs
web            tcp        8080        80       ingress   2: 10.20.0.10:80,10.20.0.129:80   1: 10.20.0.10:80   differs
`, "")

	res = netctl(t, sock, "ingress", "ls", "--node", "node-2", "--format", "json")
	var rows []ingressRow
	if err := json.Unmarshal([]byte(res.Stdout), &rows); err != nil || res.Code != 0 {
		t.Fatalf("exit %d, %v:\n%s", res.Code, err, res.Stdout)
	}
	if len(rows) != 3 || rows[2].Target != 80 || rows[2].Mode != "ingress" ||
		!slices.Equal(rows[2].Differences, []string{"want backends [10.20.0.10:80 10.20.0.129:80], kernel has [10.20.0.10:80]"}) {
		t.Errorf("JSON rows %+v", rows)
	}
}

func TestDNSLookup(t *testing.T) {
	f := meshFake()
	sock := serve(t, f)

	res := netctl(t, sock, "dns", "lookup", "web", "--network", "front")
	res.Check(t, 0, `Name:      web
Network:   front (frontnet00000000000000001)
Node:      node-1 (node1id000000000000000001)
Response:  NOERROR
Addresses: 10.20.0.128
Forwarded: no
`, "")
	if reqs := f.meshRequests(); len(reqs) != 1 || reqs[0].GetDnsName() != "web" || reqs[0].GetDnsNetwork() != "front" || reqs[0].GetOverlay() {
		t.Errorf("InspectMesh asked %v", reqs)
	}

	res = netctl(t, sock, "dns", "lookup", "example.com", "--network", "back", "--node", "node-2")
	res.Check(t, 0, `Name:      example.com
Network:   back (backnet000000000000000002)
Node:      node-2 (node2id000000000000000002)
Response:  NOERROR
Addresses: 93.184.215.14
Forwarded: yes
`, "")

	res = netctl(t, sock, "dns", "lookup", "nothing", "--network", "front", "--format", "json")
	res.Check(t, 0, `{
  "name": "nothing",
  "network": "front",
  "network_id": "frontnet00000000000000001",
  "node": "node-1",
  "node_id": "node1id000000000000000001",
  "addrs": [],
  "rcode": "NXDOMAIN",
  "forwarded": false
}
`, "")

	res = netctl(t, sock, "dns", "lookup", "broken", "--network", "front")
	res.Check(t, 1, "", "Error: node node-1 could not look up broken: no zone for network "+idFront+"\n")

	res = netctl(t, sock, "dns", "lookup", "web", "--network", "nope")
	res.Check(t, 1, "", "Error: inspect the mesh of the manager's node: network \"nope\" not found\n")
}

func TestCheck(t *testing.T) {
	f := meshFake()
	webVIPDiffers(f)
	sock := serve(t, f)

	res := netctl(t, sock, "check")
	res.Check(t, 1, `node-1: clean
node-2: vip 10.20.0.128 (web): want backends [10.20.0.10 10.20.0.129], kernel has [10.20.0.10]
node-2: vip 10.20.0.200 (gonesvc00000): not wanted; kernel has backends []
node-2: 2 differences
node-3: skipped: down
node-4: not read: the node is disconnected
`, "Error: 2 differences on 1 node, 1 node not read\n")
	reqs := f.meshRequests()
	slices.SortFunc(reqs, func(a, b *api.InspectMeshRequest) int { return strings.Compare(a.GetNode(), b.GetNode()) })
	if len(reqs) != 2 || reqs[0].GetNode() != idNode1 || reqs[1].GetNode() != idNode2 || !reqs[0].GetOverlay() || !reqs[1].GetOverlay() {
		t.Errorf("InspectMesh asked %v, want node-1 and node-2 with their overlay", reqs)
	}

	res = netctl(t, sock, "check", "--node", "node-2", "--format", "json")
	var results []nodeCheck
	if err := json.Unmarshal([]byte(res.Stdout), &results); err != nil || res.Code != 1 || res.Stderr != "Error: 2 differences on 1 node\n" {
		t.Fatalf("exit %d, stderr %q, %v:\n%s", res.Code, res.Stderr, err, res.Stdout)
	}
	if len(results) != 1 || results[0].Result != checkDiffers || len(results[0].Differences) != 2 ||
		results[0].Differences[0] != (meshDifference{Kind: "vip", Key: "10.20.0.128", Of: "web",
			Detail: "want backends [10.20.0.10 10.20.0.129], kernel has [10.20.0.10]"}) {
		t.Errorf("JSON %+v", results)
	}

	// A node named is read or fails, whatever its state.
	res = netctl(t, sock, "check", "--node", "node-3")
	res.Check(t, 1, "node-3: not read: the node is down\n", "Error: 1 node not read\n")

	// A READY node whose agent does not answer is not read.
	f.meshErrs = map[string]error{idNode2: status.Error(codes.DeadlineExceeded, "node node-2 did not answer in time")}
	res = netctl(t, sock, "check")
	res.Check(t, 1, `node-1: clean
node-2: not read: node node-2 did not answer in time
node-3: skipped: down
node-4: not read: the node is disconnected
`, "Error: 2 nodes not read\n")

	// Converged: every READY node clean, DOWN nodes skipped.
	clean := meshFake()
	clean.nodes = clean.nodes[:3]
	res = netctl(t, serve(t, clean), "check")
	res.Check(t, 0, "node-1: clean\nnode-2: clean\nnode-3: skipped: down\n", "")
}

func TestMeshUsageErrors(t *testing.T) {
	tests := []struct{ args, want string }{
		{"vip ls --format pretty", "Error: invalid --format \"pretty\": must be one of table, json\n"},
		{"ingress ls extra", "Error: \"netctl ingress ls\" accepts no arguments, got [\"extra\"]\nSee 'netctl ingress ls --help'.\n"},
		{"dns lookup web", "Error: required flag --network not set: name the network whose containers ask\nSee 'netctl dns lookup --help'.\n"},
		{"dns lookup a..b --network front", "Error: invalid NAME \"a..b\": an empty label (two dots in a row, or a leading dot)\nSee 'netctl dns lookup --help'.\n"},
		{"dns lookup --network front", "Error: \"netctl dns lookup\" requires exactly 1 argument(s) (NAME), got 0\nSee 'netctl dns lookup --help'.\n"},
		{"check --format table", "Error: invalid --format \"table\": must be one of pretty, json\n"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			f := meshFake()
			res := netctl(t, serve(t, f), strings.Fields(tt.args)...)
			res.Check(t, 1, "", tt.want)
			if calls := f.callNames(); len(calls) != 0 {
				t.Errorf("a usage error made RPCs %v", calls)
			}
		})
	}
}
