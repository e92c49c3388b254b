package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/shoal/shoal/internal/ctltest"

	"github.com/shoal/shoal/api"
)

const testNet = "net1abcdefghijklmnop"

// inspectResponse is node 198.18.0.1's view of net1 with a local task and two remote ones,
// its kernel programmed exactly as desired; edit changes the kernel.
func inspectResponse(edit func(k *api.OverlayKernelState)) *api.InspectOverlayResponse {
	k := &api.OverlayKernelState{
		NetworkId: testNet, Device: "shxnet1abcdef", DeviceExists: true, Vni: 4096, Local: "198.18.0.1", Port: 4789,
		Mtu: 1450, Master: "shlnet1abcdef", Up: true, Proxy: true,
		Fdb: []*api.OverlayKernelState_FDBEntry{
			{Mac: floodMAC, Dst: "198.18.0.2", Permanent: true},
			{Mac: "02:42:0a:00:00:06", Dst: "198.18.0.2", Permanent: true},
			{Mac: "02:42:0a:00:00:07", Dst: "198.18.0.2", Permanent: true},
		},
		Neigh: []*api.OverlayKernelState_NeighEntry{
			{Ip: "10.0.0.6", Mac: "02:42:0a:00:00:06", Permanent: true},
			{Ip: "10.0.0.7", Mac: "02:42:0a:00:00:07", Permanent: true},
		},
		BridgeFdb: []*api.OverlayKernelState_BridgeEntry{
			{Mac: "02:42:0a:00:00:06", Kind: bridgeStatic},
			{Mac: "02:42:0a:00:00:07", Kind: bridgeStatic},
		},
	}
	if edit != nil {
		edit(k)
	}
	return &api.InspectOverlayResponse{
		Network: &api.Network{Id: testNet, Vni: 4096, Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "front"}}},
		Node:    &api.Node{Id: "node1", Description: &api.NodeDescription{Hostname: "n1", DataPathAddr: "198.18.0.1"}},
		Endpoints: []*api.Endpoint{
			{NetworkId: testNet, TaskId: "a", Ip: "10.0.0.5", Mac: "02:42:0a:00:00:05", Vtep: "198.18.0.1"},
			{NetworkId: testNet, TaskId: "b", Ip: "10.0.0.6", Mac: "02:42:0a:00:00:06", Vtep: "198.18.0.2"},
			{NetworkId: testNet, TaskId: "c", Ip: "10.0.0.7", Mac: "02:42:0a:00:00:07", Vtep: "198.18.0.2"},
		},
		Kernel: k,
	}
}

// differences renders what is not ok: device problems, "key:status" of FDB and neighbour entries
// and "bridge key:status" of bridge entries.
func differences(v overlayView) []string {
	out := slices.Clone(v.Problems)
	for _, e := range append(slices.Clone(v.FDB), v.Neighbours...) {
		if e.Status != statusOK {
			out = append(out, fmt.Sprintf("%s:%s", e.Key, e.Status))
		}
	}
	for _, e := range v.BridgeFDB {
		if e.Status != statusOK {
			out = append(out, fmt.Sprintf("bridge %s:%s", e.Key, e.Status))
		}
	}
	return out
}

func TestCompareOverlay(t *testing.T) {
	cases := []struct {
		name string
		resp *api.InspectOverlayResponse
		want []string
	}{
		{"as desired", inspectResponse(nil), nil},
		{"an entry missing, another extra", inspectResponse(func(k *api.OverlayKernelState) {
			k.Fdb = append(k.Fdb[:2], &api.OverlayKernelState_FDBEntry{Mac: "02:42:0a:00:00:09", Dst: "198.18.0.3", Permanent: true})
			k.Neigh = k.Neigh[:1]
		}), []string{"02:42:0a:00:00:07:missing", "02:42:0a:00:00:09:extra", "10.0.0.7:missing"}},
		{"a MAC at the wrong VTEP, a neighbour not permanent", inspectResponse(func(k *api.OverlayKernelState) {
			k.Fdb[1].Dst = "198.18.0.3"
			k.Neigh[0].Permanent = false
		}), []string{"02:42:0a:00:00:06:wrong", "10.0.0.6:wrong"}},
		{"a stale flood entry", inspectResponse(func(k *api.OverlayKernelState) {
			k.Fdb = append(k.Fdb, &api.OverlayKernelState_FDBEntry{Mac: floodMAC, Dst: "198.18.0.9", Permanent: true})
		}), []string{floodMAC + ":extra"}},
		{"a device not as the network wants", inspectResponse(func(k *api.OverlayKernelState) {
			k.Vni, k.Learning, k.Up, k.Master = 7, true, false, ""
		}), []string{"VNI 7, want 4096", "master none, want shlnet1abcdef", "down, want up", "learning on, want off"}},
		{"no device on a node running a task of the network", inspectResponse(func(k *api.OverlayKernelState) {
			*k = api.OverlayKernelState{NetworkId: testNet}
		}), []string{"missing: the node runs a task of the network", floodMAC + ":missing", "02:42:0a:00:00:06:missing", "02:42:0a:00:00:07:missing", "10.0.0.6:missing", "10.0.0.7:missing",
			"bridge 02:42:0a:00:00:06:missing", "bridge 02:42:0a:00:00:07:missing"}},
		{"a bridge entry missing", inspectResponse(func(k *api.OverlayKernelState) {
			k.BridgeFdb = k.BridgeFdb[:1]
		}), []string{"bridge 02:42:0a:00:00:07:missing"}},
		{"a bridge entry learnt", inspectResponse(func(k *api.OverlayKernelState) {
			k.BridgeFdb[0].Kind = bridgeLearnt
		}), []string{"bridge 02:42:0a:00:00:06:wrong"}},
		{"bridge entries of a MAC of no endpoint and of a local endpoint's MAC", inspectResponse(func(k *api.OverlayKernelState) {
			k.BridgeFdb = append(k.BridgeFdb,
				&api.OverlayKernelState_BridgeEntry{Mac: "02:42:0a:00:00:09", Kind: bridgeStatic},
				&api.OverlayKernelState_BridgeEntry{Mac: "02:42:0a:00:00:05"})
		}), []string{"bridge 02:42:0a:00:00:05:extra", "bridge 02:42:0a:00:00:09:extra"}},
		{"bridge entries in another spelling of the MAC", inspectResponse(func(k *api.OverlayKernelState) {
			k.BridgeFdb[0].Mac, k.BridgeFdb[1].Mac = "02:42:0A:00:00:06", "02-42-0a-00-00-07"
		}), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := compareOverlay(tc.resp)
			if got := differences(v); !slices.Equal(got, tc.want) {
				t.Errorf("differences %q, want %q", got, tc.want)
			}
			if v.Differences() != len(tc.want) {
				t.Errorf("Differences() = %d, want %d", v.Differences(), len(tc.want))
			}
		})
	}

	// The bridge entries as desired: one static entry per remote endpoint's MAC; the local
	// endpoint's MAC (02:42:0a:00:00:05) is not among them.
	v := compareOverlay(inspectResponse(nil))
	wantBridge := []overlayEntry{
		{Key: "02:42:0a:00:00:06", Desired: bridgeStatic, Programmed: bridgeStatic, Status: statusOK},
		{Key: "02:42:0a:00:00:07", Desired: bridgeStatic, Programmed: bridgeStatic, Status: statusOK},
	}
	if !slices.Equal(v.BridgeFDB, wantBridge) {
		t.Errorf("bridge entries %+v, want %+v", v.BridgeFDB, wantBridge)
	}
	// A learnt entry is wrong; an extra one says what the kernel has.
	v = compareOverlay(inspectResponse(func(k *api.OverlayKernelState) {
		k.BridgeFdb[1].Kind = bridgeLearnt
		k.BridgeFdb = append(k.BridgeFdb, &api.OverlayKernelState_BridgeEntry{Mac: "02:42:0a:00:00:09", Kind: bridgeLearnt})
	}))
	wantBridge = []overlayEntry{
		{Key: "02:42:0a:00:00:06", Desired: bridgeStatic, Programmed: bridgeStatic, Status: statusOK},
		{Key: "02:42:0a:00:00:07", Desired: bridgeStatic, Programmed: bridgeLearnt, Status: statusWrong},
		{Key: "02:42:0a:00:00:09", Programmed: bridgeLearnt, Status: statusExtra},
	}
	if !slices.Equal(v.BridgeFDB, wantBridge) {
		t.Errorf("bridge entries %+v, want %+v", v.BridgeFDB, wantBridge)
	}

	// A node without a task of the network needs no device.
	r := inspectResponse(func(k *api.OverlayKernelState) { *k = api.OverlayKernelState{NetworkId: testNet} })
	r.Endpoints = r.Endpoints[1:]
	if v := compareOverlay(r); v.Differences() != 0 || v.DeviceWant {
		t.Errorf("no task, no device: %+v", v)
	}
}

// overlayFake answers the overlay calls with inspectResponse's view.
type overlayFake struct {
	*fakeControl
	resp *api.InspectOverlayResponse
	req  *api.InspectOverlayRequest
}

func (f *overlayFake) InspectOverlay(_ context.Context, req *api.InspectOverlayRequest) (*api.InspectOverlayResponse, error) {
	f.req = req
	return f.resp, nil
}

func (f *overlayFake) ListOverlayEndpoints(context.Context, *api.ListOverlayEndpointsRequest) (*api.ListOverlayEndpointsResponse, error) {
	return &api.ListOverlayEndpointsResponse{Endpoints: f.resp.Endpoints}, nil
}

func (f *overlayFake) ListNetworks(context.Context, *api.ListNetworksRequest) (*api.ListNetworksResponse, error) {
	return &api.ListNetworksResponse{Networks: []*api.Network{f.resp.Network}}, nil
}

func TestOverlayCommands(t *testing.T) {
	resp := inspectResponse(func(k *api.OverlayKernelState) {
		k.Neigh = k.Neigh[:1]
		k.BridgeFdb[1].Kind = bridgeLearnt
	})
	resp.Network.Spec.Ipam = []*api.IPAMConfig{{Subnet: "10.0.0.0/24"}}
	f := &overlayFake{fakeControl: newFake(), resp: resp}
	sock := ctltest.Serve(t, f)

	res := netctl(t, sock, "overlay", "ls")
	res.Check(t, 0, `NETWORK   VNI    SUBNETS       ENDPOINTS   VTEPS
front     4096   10.0.0.0/24   3           198.18.0.1,198.18.0.2
`, "")

	res = netctl(t, sock, "overlay", "inspect", "front", "--node", "n1")
	if f.req.GetNetwork() != "front" || f.req.GetNode() != "n1" {
		t.Errorf("InspectOverlay asked %v", f.req)
	}
	res.Check(t, 0, `Network:    front (net1abcdefghijklmnop)
VNI:        4096
Subnets:    10.0.0.0/24
Node:       n1 (node1)
Local VTEP: 198.18.0.1
Device:     shxnet1abcdef: up, MTU 1450, local 198.18.0.1, master shlnet1abcdef
Peers:      198.18.0.2

FDB (MAC → VTEP)
MAC                 DESIRED VTEP   PROGRAMMED VTEP   STATUS
00:00:00:00:00:00   198.18.0.2     198.18.0.2        ok
02:42:0a:00:00:06   198.18.0.2     198.18.0.2        ok
02:42:0a:00:00:07   198.18.0.2     198.18.0.2        ok

Neighbours (IP → MAC)
IP         DESIRED MAC         PROGRAMMED MAC      STATUS
10.0.0.6   02:42:0a:00:00:06   02:42:0a:00:00:06   ok
10.0.0.7   02:42:0a:00:00:07   -                   * missing

Bridge FDB on the VXLAN port (MAC → kind)
MAC                 DESIRED KIND   PROGRAMMED KIND   STATUS
02:42:0a:00:00:06   static         static            ok
02:42:0a:00:00:07   static         learnt            * wrong

2 differences
`, "")

	res = netctl(t, sock, "overlay", "inspect", "front", "--node", "n1", "--format", "json")
	var got struct {
		BridgeFDB []overlayEntry `json:"bridge_fdb"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil || res.Code != 0 {
		t.Fatalf("exit %d, %v:\n%s", res.Code, err, res.Stdout)
	}
	wantBridge := []overlayEntry{
		{Key: "02:42:0a:00:00:06", Desired: bridgeStatic, Programmed: bridgeStatic, Status: statusOK},
		{Key: "02:42:0a:00:00:07", Desired: bridgeStatic, Programmed: bridgeLearnt, Status: statusWrong},
	}
	if !slices.Equal(got.BridgeFDB, wantBridge) {
		t.Errorf("JSON bridge_fdb %+v, want %+v", got.BridgeFDB, wantBridge)
	}
}
