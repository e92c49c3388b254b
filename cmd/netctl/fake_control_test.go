package main

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/ctltest"
)

// fakeControl is an in-memory Control service answering what netctl asks,
// recording every call.
type fakeControl struct {
	api.UnimplementedControlServer

	mu       sync.Mutex
	calls    []string
	nodes    []*api.Node
	services []*api.Service
	tasks    []*api.Task
	networks []*api.Network
	bindings []*api.IPBinding
	releases []*api.ReleaseBindingRequest
	state    *api.GetAllocatorStateResponse

	// InspectMesh answers meshes[node ID], or fails with meshErrs[node ID]; a node with
	// neither has no session. dnsAnswers[name] is the answer to a lookup of name.
	meshes     map[string]*api.InspectMeshResponse
	meshErrs   map[string]error
	dnsAnswers map[string]*api.DNSAnswer
	meshReqs   []*api.InspectMeshRequest
}

func (f *fakeControl) record(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func (f *fakeControl) callNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func hostname(n *api.Node) string { return n.GetDescription().GetHostname() }

func (f *fakeControl) ListNodes(context.Context, *api.ListNodesRequest) (*api.ListNodesResponse, error) {
	f.record("ListNodes")
	return &api.ListNodesResponse{Nodes: f.nodes}, nil
}

func (f *fakeControl) GetNode(_ context.Context, req *api.GetNodeRequest) (*api.GetNodeResponse, error) {
	f.record("GetNode")
	n, err := ctltest.FindRef("node", req.GetNodeId(), f.nodes, hostname)
	if err != nil {
		return nil, err
	}
	return &api.GetNodeResponse{Node: n}, nil
}

func (f *fakeControl) ListTasks(_ context.Context, req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	f.record("ListTasks")
	var ids []string
	for _, ref := range req.GetServiceIds() {
		svc, err := ctltest.FindRef("service", ref, f.services, ctltest.ServiceName)
		if err != nil {
			return nil, err
		}
		ids = append(ids, svc.GetId())
	}
	resp := &api.ListTasksResponse{}
	for _, t := range f.tasks {
		if len(ids) == 0 || slices.Contains(ids, t.GetServiceId()) {
			resp.Tasks = append(resp.Tasks, t)
		}
	}
	return resp, nil
}

func (f *fakeControl) ListNetworks(context.Context, *api.ListNetworksRequest) (*api.ListNetworksResponse, error) {
	f.record("ListNetworks")
	return &api.ListNetworksResponse{Networks: f.networks}, nil
}

func (f *fakeControl) GetNetwork(_ context.Context, req *api.GetNetworkRequest) (*api.GetNetworkResponse, error) {
	f.record("GetNetwork")
	n, err := ctltest.FindRef("network", req.GetNetworkId(), f.networks, networkName)
	if err != nil {
		return nil, err
	}
	return &api.GetNetworkResponse{Network: n}, nil
}

func (f *fakeControl) ListBindings(_ context.Context, req *api.ListBindingsRequest) (*api.ListBindingsResponse, error) {
	f.record("ListBindings")
	return ctltest.ListBindings(req, f.services, f.networks, f.bindings)
}

// ReleaseBinding marks the slot's (node's) bindings, as the manager does.
func (f *fakeControl) ReleaseBinding(_ context.Context, req *api.ReleaseBindingRequest) (*api.ReleaseBindingResponse, error) {
	f.record("ReleaseBinding")
	f.mu.Lock()
	f.releases = append(f.releases, proto.Clone(req).(*api.ReleaseBindingRequest))
	f.mu.Unlock()
	svc, err := ctltest.FindRef("service", req.GetServiceId(), f.services, ctltest.ServiceName)
	if err != nil {
		return nil, err
	}
	node := ""
	if req.GetNodeId() != "" {
		n, err := ctltest.FindRef("node", req.GetNodeId(), f.nodes, hostname)
		if err != nil {
			return nil, err
		}
		node = n.GetId()
	}
	network := ""
	if req.GetNetworkId() != "" {
		n, err := ctltest.FindRef("network", req.GetNetworkId(), f.networks, networkName)
		if err != nil {
			return nil, err
		}
		network = n.GetId()
	}
	resp := &api.ReleaseBindingResponse{}
	for _, b := range f.bindings {
		if b.GetServiceId() == svc.GetId() && b.GetKind() != api.IPBinding_KIND_VIP &&
			b.GetSlot() == req.GetSlot() && b.GetNodeId() == node &&
			(network == "" || network == b.GetNetworkId()) {
			b.ReleaseRequested = true
			resp.Bindings = append(resp.Bindings, b)
		}
	}
	if len(resp.Bindings) == 0 {
		return nil, status.Errorf(codes.NotFound, "service %s has no binding for slot %d", ctltest.ServiceName(svc), req.GetSlot())
	}
	return resp, nil
}

func (f *fakeControl) GetAllocatorState(context.Context, *api.GetAllocatorStateRequest) (*api.GetAllocatorStateResponse, error) {
	f.record("GetAllocatorState")
	if f.state == nil {
		return nil, status.Error(codes.FailedPrecondition, "not the leader: ask mgr-1")
	}
	return f.state, nil
}

// InspectMesh answers as the manager: node-1 is the manager answering; the DNS lookup and the
// overlay only when asked.
func (f *fakeControl) InspectMesh(_ context.Context, req *api.InspectMeshRequest) (*api.InspectMeshResponse, error) {
	f.record("InspectMesh")
	f.mu.Lock()
	f.meshReqs = append(f.meshReqs, proto.Clone(req).(*api.InspectMeshRequest))
	f.mu.Unlock()
	n, err := ctltest.FindRef("node", cmp.Or(req.GetNode(), idNode1), f.nodes, hostname)
	if err != nil {
		return nil, err
	}
	if err := f.meshErrs[n.GetId()]; err != nil {
		return nil, err
	}
	if f.meshes[n.GetId()] == nil {
		return nil, status.Errorf(codes.Unavailable, "node %s: the node has no session with this manager", hostname(n))
	}
	resp := proto.Clone(f.meshes[n.GetId()]).(*api.InspectMeshResponse)
	if req.GetDnsName() != "" {
		if req.GetDnsNetwork() == "" {
			return nil, status.Error(codes.InvalidArgument, "dns_network: empty; name the network whose containers would ask")
		}
		nw, err := ctltest.FindRef("network", req.GetDnsNetwork(), f.networks, networkName)
		if err != nil {
			return nil, err
		}
		resp.DnsAnswer = &api.DNSAnswer{Rcode: "NXDOMAIN"}
		if a := f.dnsAnswers[req.GetDnsName()]; a != nil {
			resp.DnsAnswer = proto.Clone(a).(*api.DNSAnswer)
		}
		resp.DnsAnswer.Name, resp.DnsAnswer.NetworkId = req.GetDnsName(), nw.GetId()
	}
	if !req.GetOverlay() {
		resp.Overlay = nil
	}
	return resp, nil
}

func (f *fakeControl) meshRequests() []*api.InspectMeshRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.meshReqs)
}

// serve starts f on a unix socket and returns the socket's path. The
// server stops when the test ends.
func serve(t *testing.T, f *fakeControl) string { return ctltest.Serve(t, f) }

// netctl runs the CLI against sock with args.
func netctl(t *testing.T, sock string, args ...string) ctltest.Result {
	t.Helper()
	return ctltest.Run(run, sock, args...)
}

// fixedNow is the clock of the tests.
var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func fixClock(t *testing.T) {
	t.Helper()
	old := now
	now = func() time.Time { return fixedNow }
	t.Cleanup(func() { now = old })
}

func ago(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(fixedNow.Add(-d)) }

// Fixtures: two nodes; networks front (IPv4, a dynamic range and an aux
// address) and back (dual-stack); a replicated web on front with a VIP and
// three slots (one pinned, one without the node in its history, one held
// and being released after its task was reaped) and a global api on back.
const (
	idNode1 = "node1id000000000000000001"
	idNode2 = "node2id000000000000000002"
	idFront = "frontnet00000000000000001"
	idBack  = "backnet000000000000000002"
	idWeb   = "websvc0000000000000000001"
	idAPI   = "apisvc0000000000000000002"
)

func newFake() *fakeControl {
	node := func(id, host string) *api.Node {
		return &api.Node{Id: id, Description: &api.NodeDescription{Hostname: host}}
	}
	service := func(id, name string) *api.Service {
		return &api.Service{Id: id, Spec: &api.ServiceSpec{Annotations: &api.Annotations{Name: name}}}
	}
	task := func(id, svc string, slot uint64, node string, state api.TaskState) *api.Task {
		return &api.Task{Id: id, ServiceId: svc, Slot: slot, NodeId: node, Status: &api.TaskStatus{State: state}}
	}
	return &fakeControl{
		nodes:    []*api.Node{node(idNode1, "node-1"), node(idNode2, "node-2")},
		services: []*api.Service{service(idWeb, "web"), service(idAPI, "api")},
		tasks: []*api.Task{
			task("webtask1a0000000000000001", idWeb, 1, idNode2, api.TaskState_TASK_STATE_SHUTDOWN),
			task("webtask1b0000000000000001", idWeb, 1, idNode1, api.TaskState_TASK_STATE_RUNNING),
			task("webtask2a0000000000000002", idWeb, 2, idNode2, api.TaskState_TASK_STATE_ASSIGNED),
			task("apitaskn1000000000000000a", idAPI, 0, idNode1, api.TaskState_TASK_STATE_RUNNING),
		},
		networks: []*api.Network{frontNetwork(), backNetwork()},
		bindings: fixtureBindings(),
	}
}

func frontNetwork() *api.Network {
	return &api.Network{
		Id: idFront,
		Spec: &api.NetworkSpec{
			Annotations: &api.Annotations{Name: "front", Labels: map[string]string{"team": "edge"}},
			Driver:      "overlay",
			Ipam: []*api.IPAMConfig{{
				Subnet: "10.20.0.0/24", Gateway: "10.20.0.1", IpRange: "10.20.0.128/25",
				AuxAddresses: map[string]string{"router": "10.20.0.2", "pool": "10.20.0.250-10.20.0.254"},
			}},
		},
		Vni: 4097,
		Allocation: []*api.SubnetAllocation{{
			Subnet:  "10.20.0.0/24",
			Last:    "10.20.0.131",
			Cooling: []*api.ReleasedAddress{{Address: "10.20.0.131", ReleasedAt: ago(10 * time.Second)}},
		}},
	}
}

func backNetwork() *api.Network {
	return &api.Network{
		Id: idBack,
		Spec: &api.NetworkSpec{
			Annotations: &api.Annotations{Name: "back"},
			Driver:      "overlay",
			Ipam:        []*api.IPAMConfig{{Subnet: "10.30.0.0/24"}, {Subnet: "fd00:30::/64"}},
		},
		Vni: 4098,
	}
}

func fixtureBindings() []*api.IPBinding {
	return []*api.IPBinding{
		{Id: "bvip", ServiceId: idWeb, ServiceName: "web", NetworkId: idFront, Kind: api.IPBinding_KIND_VIP,
			Address: "10.20.0.128/24"},
		{Id: "b1", ServiceId: idWeb, ServiceName: "web", NetworkId: idFront, Kind: api.IPBinding_KIND_SLOT, Slot: 1,
			Address: "10.20.0.10/24", Pinned: true, TaskId: "webtask1b0000000000000001",
			History: []*api.BindingHolder{
				{TaskId: "webtask1a0000000000000001", NodeId: idNode2, Address: "10.20.0.10/24", Since: ago(2 * time.Hour)},
				{TaskId: "webtask1b0000000000000001", NodeId: idNode1, Address: "10.20.0.10/24", Since: ago(5 * time.Minute)},
			}},
		{Id: "b2", ServiceId: idWeb, ServiceName: "web", NetworkId: idFront, Kind: api.IPBinding_KIND_SLOT, Slot: 2,
			Address: "10.20.0.129/24", TaskId: "webtask2a0000000000000002",
			History: []*api.BindingHolder{{TaskId: "webtask2a0000000000000002", Address: "10.20.0.129/24", Since: ago(time.Minute)}}},
		{Id: "b3", ServiceId: idWeb, ServiceName: "web", NetworkId: idFront, Kind: api.IPBinding_KIND_SLOT, Slot: 3,
			Address: "10.20.0.130/24", Pinned: true, TaskId: "webtask3gone000000000003", HeldSince: ago(time.Hour), ReleaseRequested: true,
			History: []*api.BindingHolder{{TaskId: "webtask3gone000000000003", NodeId: idNode1, Address: "10.20.0.130/24", Since: ago(3 * time.Hour)}}},
		{Id: "ba", ServiceId: idAPI, ServiceName: "api", NetworkId: idBack, Kind: api.IPBinding_KIND_NODE, NodeId: idNode1,
			Address: "10.30.0.5/24", TaskId: "apitaskn1000000000000000a",
			History: []*api.BindingHolder{{TaskId: "apitaskn1000000000000000a", NodeId: idNode1, Address: "10.30.0.5/24", Since: ago(time.Hour)}}},
	}
}

func allocatorState() *api.GetAllocatorStateResponse {
	return &api.GetAllocatorStateResponse{
		LeaderNodeId:    idNode1,
		StateJson:       `{"pools":{},"bindings":[]}`,
		Version:         120,
		RebuiltJson:     `{"pools":{}}`,
		RebuiltVersion:  100,
		RebuildDuration: durationpb.New(12 * time.Millisecond),
		Inconsistencies: []string{"task webtask9: address 10.20.0.9/24 disagrees with its binding's 10.20.0.10/24: repaired"},
	}
}
