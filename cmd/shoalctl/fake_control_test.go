package main

import (
	"context"
	"net/netip"
	"slices"
	"strings"
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

// fakeControl is an in-memory Control service recording every call.
type fakeControl struct {
	api.UnimplementedControlServer

	mu      sync.Mutex
	cluster *api.GetClusterResponse
	nodes   []*api.Node
	calls   []string

	updates   []*api.UpdateNodeRequest
	rotations []*api.RotateJoinTokenRequest
	removals  []*api.RemoveNodeRequest

	// conflicts is how many UpdateNode calls lose a race: another writer
	// bumps the node's version just before the version check.
	conflicts int
	// updateErr, if set, is every UpdateNode call's answer.
	updateErr error
	// block makes GetCluster wait until the caller gives up.
	block bool

	services        []*api.Service
	tasks           []*api.Task
	serviceCreates  []*api.CreateServiceRequest
	serviceUpdates  []*api.UpdateServiceRequest
	serviceRemovals []string
	taskLists       []*api.ListTasksRequest
	// serviceConflicts is how many UpdateService calls lose a race.
	serviceConflicts int
	// serviceRace, if set, is the other writer's change in those races;
	// without it the other writer changes only the version (the updater
	// writing update_status, say).
	serviceRace func(svc *api.Service)
	// frames script a service converging: each ListTasks call first applies
	// the next one, so a follower sees one frame per poll.
	frames []func(f *fakeControl)

	networks        []*api.Network
	networkCreates  []*api.CreateNetworkRequest
	networkRemovals []string
	// networkUsers names the services using each network (by ID), which
	// RemoveNetwork refuses to remove.
	networkUsers map[string][]string

	bindings []*api.IPBinding
}

func (f *fakeControl) record(name string) {
	f.calls = append(f.calls, name)
}

// callNames returns the RPCs made so far, in order.
func (f *fakeControl) callNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// find resolves ref like the real manager: ID, hostname or unique ID prefix.
func (f *fakeControl) find(ref string) (*api.Node, error) {
	return ctltest.FindRef("node", ref, f.nodes, func(n *api.Node) string { return n.GetDescription().GetHostname() })
}

// findService resolves ref like the real manager: ID, name or unique ID prefix.
func (f *fakeControl) findService(ref string) (*api.Service, error) {
	return ctltest.FindRef("service", ref, f.services, serviceName)
}

func (f *fakeControl) GetCluster(ctx context.Context, _ *api.GetClusterRequest) (*api.GetClusterResponse, error) {
	f.mu.Lock()
	f.record("GetCluster")
	block := f.block
	resp := proto.Clone(f.cluster).(*api.GetClusterResponse)
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return resp, nil
}

func (f *fakeControl) RotateJoinToken(_ context.Context, req *api.RotateJoinTokenRequest) (*api.RotateJoinTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RotateJoinToken")
	f.rotations = append(f.rotations, req)
	tokens := f.cluster.GetCluster().GetRootCa().GetJoinTokens()
	if req.GetRole() == api.NodeRole_NODE_ROLE_MANAGER {
		tokens.Manager = "SHOAL-1-digest-rotatedmanager"
	} else {
		tokens.Worker = "SHOAL-1-digest-rotatedworker"
	}
	return &api.RotateJoinTokenResponse{JoinTokens: proto.Clone(tokens).(*api.JoinTokens)}, nil
}

func (f *fakeControl) ListNodes(context.Context, *api.ListNodesRequest) (*api.ListNodesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListNodes")
	resp := &api.ListNodesResponse{}
	for _, n := range f.nodes {
		resp.Nodes = append(resp.Nodes, proto.Clone(n).(*api.Node))
	}
	return resp, nil
}

func (f *fakeControl) GetNode(_ context.Context, req *api.GetNodeRequest) (*api.GetNodeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("GetNode")
	n, err := f.find(req.GetNodeId())
	if err != nil {
		return nil, err
	}
	return &api.GetNodeResponse{Node: proto.Clone(n).(*api.Node)}, nil
}

func (f *fakeControl) UpdateNode(_ context.Context, req *api.UpdateNodeRequest) (*api.UpdateNodeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("UpdateNode")
	f.updates = append(f.updates, proto.Clone(req).(*api.UpdateNodeRequest))
	var n *api.Node
	for _, cand := range f.nodes {
		if cand.GetId() == req.GetNodeId() {
			n = cand
		}
	}
	if n == nil {
		return nil, status.Errorf(codes.NotFound, "node %q not found", req.GetNodeId())
	}
	if f.updateErr != nil {
		return nil, f.updateErr
	}
	if f.conflicts > 0 {
		f.conflicts--
		n.Meta.Version++
	}
	if req.GetNodeVersion() != n.GetMeta().GetVersion() {
		return nil, status.Errorf(codes.Aborted, "node %s changed since version %d (now %d)",
			n.GetId(), req.GetNodeVersion(), n.GetMeta().GetVersion())
	}
	n.Spec = proto.Clone(req.GetSpec()).(*api.NodeSpec)
	n.Meta.Version++
	return &api.UpdateNodeResponse{Node: proto.Clone(n).(*api.Node)}, nil
}

func (f *fakeControl) RemoveNode(_ context.Context, req *api.RemoveNodeRequest) (*api.RemoveNodeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveNode")
	f.removals = append(f.removals, req)
	n, err := f.find(req.GetNodeId())
	if err != nil {
		return nil, err
	}
	if n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY && !req.GetForce() {
		return nil, status.Errorf(codes.FailedPrecondition,
			"node %s is not down and can't be removed: drain it and stop shoald, or use --force", n.GetId())
	}
	f.nodes = slicesDelete(f.nodes, n)
	return &api.RemoveNodeResponse{}, nil
}

func (f *fakeControl) CreateService(_ context.Context, req *api.CreateServiceRequest) (*api.CreateServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("CreateService")
	f.serviceCreates = append(f.serviceCreates, proto.Clone(req).(*api.CreateServiceRequest))
	svc := &api.Service{
		Id:          idNewService,
		Meta:        &api.Meta{Version: 100},
		Spec:        proto.Clone(req.GetSpec()).(*api.ServiceSpec),
		SpecVersion: 1,
	}
	f.services = append(f.services, svc)
	return &api.CreateServiceResponse{Service: proto.Clone(svc).(*api.Service)}, nil
}

func (f *fakeControl) GetService(_ context.Context, req *api.GetServiceRequest) (*api.GetServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("GetService")
	svc, err := f.findService(req.GetServiceId())
	if err != nil {
		return nil, err
	}
	return &api.GetServiceResponse{Service: proto.Clone(svc).(*api.Service)}, nil
}

func (f *fakeControl) ListServices(context.Context, *api.ListServicesRequest) (*api.ListServicesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListServices")
	resp := &api.ListServicesResponse{Running: map[string]uint64{}, Desired: map[string]uint64{}}
	for _, svc := range f.services {
		resp.Services = append(resp.Services, proto.Clone(svc).(*api.Service))
		if r := svc.GetSpec().GetReplicated(); r != nil {
			resp.Desired[svc.GetId()] = r.GetReplicas()
		}
	}
	for _, t := range f.tasks {
		if t.GetDesiredState() != api.TaskState_TASK_STATE_RUNNING {
			continue
		}
		if t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
			resp.Running[t.GetServiceId()]++
		}
		if t.GetSlot() == 0 {
			resp.Desired[t.GetServiceId()]++
		}
	}
	return resp, nil
}

func (f *fakeControl) UpdateService(_ context.Context, req *api.UpdateServiceRequest) (*api.UpdateServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("UpdateService")
	f.serviceUpdates = append(f.serviceUpdates, proto.Clone(req).(*api.UpdateServiceRequest))
	var svc *api.Service
	for _, cand := range f.services {
		if cand.GetId() == req.GetServiceId() {
			svc = cand
		}
	}
	if svc == nil {
		return nil, status.Errorf(codes.NotFound, "service %q not found", req.GetServiceId())
	}
	if f.serviceConflicts > 0 {
		f.serviceConflicts--
		if f.serviceRace != nil {
			f.serviceRace(svc)
		}
		svc.Meta.Version++
	}
	if req.GetServiceVersion() != svc.GetMeta().GetVersion() {
		return nil, status.Errorf(codes.Aborted, "service %s changed since version %d (now %d)",
			svc.GetId(), req.GetServiceVersion(), svc.GetMeta().GetVersion())
	}
	// As the manager does: only a change of the task template or the
	// endpoint moves spec_version and starts an update (or a rollback).
	rolls := func(a, b *api.ServiceSpec) bool {
		return !proto.Equal(a.GetTask(), b.GetTask()) || !proto.Equal(a.GetEndpoint(), b.GetEndpoint())
	}
	if req.GetRollback() {
		if svc.PreviousSpec == nil {
			return nil, status.Errorf(codes.FailedPrecondition, "service %s has no previous spec to roll back to", serviceName(svc))
		}
		roll := rolls(svc.Spec, svc.PreviousSpec)
		svc.Spec, svc.PreviousSpec = svc.PreviousSpec, svc.Spec
		svc.PreviousSpecVersion = svc.SpecVersion
		if roll {
			svc.SpecVersion++
			svc.UpdateStatus = &api.UpdateStatus{
				State:   api.UpdateStatus_STATE_ROLLBACK_STARTED,
				Message: "manually requested rollback",
			}
		}
	} else {
		// Only a change that rolls keeps the spec it replaces; any
		// other is made to the previous spec too.
		spec := proto.Clone(req.GetSpec()).(*api.ServiceSpec)
		switch {
		case rolls(svc.Spec, spec):
			svc.PreviousSpec, svc.PreviousSpecVersion = svc.Spec, svc.SpecVersion
			svc.SpecVersion++
			svc.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_STATE_UPDATING, Message: "update in progress"}
		case svc.PreviousSpec != nil:
			prev := proto.Clone(spec).(*api.ServiceSpec)
			prev.Task, prev.Endpoint = svc.PreviousSpec.Task, svc.PreviousSpec.Endpoint
			svc.PreviousSpec = prev
		}
		svc.Spec = spec
	}
	svc.Meta.Version++
	return &api.UpdateServiceResponse{Service: proto.Clone(svc).(*api.Service)}, nil
}

func (f *fakeControl) RemoveService(_ context.Context, req *api.RemoveServiceRequest) (*api.RemoveServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveService")
	svc, err := f.findService(req.GetServiceId())
	if err != nil {
		return nil, err
	}
	f.serviceRemovals = append(f.serviceRemovals, svc.GetId())
	f.services = slices.DeleteFunc(f.services, func(s *api.Service) bool { return s == svc })
	return &api.RemoveServiceResponse{}, nil
}

func (f *fakeControl) ListTasks(_ context.Context, req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListTasks")
	f.taskLists = append(f.taskLists, proto.Clone(req).(*api.ListTasksRequest))
	if len(f.frames) > 0 {
		frame := f.frames[0]
		f.frames = f.frames[1:]
		frame(f)
	}
	var serviceIDs, nodeIDs []string
	for _, ref := range req.GetServiceIds() {
		svc, err := f.findService(ref)
		if err != nil {
			return nil, err
		}
		serviceIDs = append(serviceIDs, svc.GetId())
	}
	for _, ref := range req.GetNodeIds() {
		n, err := f.find(ref)
		if err != nil {
			return nil, err
		}
		nodeIDs = append(nodeIDs, n.GetId())
	}
	resp := &api.ListTasksResponse{}
	for _, t := range f.tasks {
		if (len(serviceIDs) == 0 || slices.Contains(serviceIDs, t.GetServiceId())) &&
			(len(nodeIDs) == 0 || slices.Contains(nodeIDs, t.GetNodeId())) &&
			(len(req.GetDesiredStates()) == 0 || slices.Contains(req.GetDesiredStates(), t.GetDesiredState())) {
			resp.Tasks = append(resp.Tasks, proto.Clone(t).(*api.Task))
		}
	}
	return resp, nil
}

func (f *fakeControl) GetTask(_ context.Context, req *api.GetTaskRequest) (*api.GetTaskResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("GetTask")
	for _, t := range f.tasks {
		if strings.HasPrefix(t.GetId(), req.GetTaskId()) {
			return &api.GetTaskResponse{Task: proto.Clone(t).(*api.Task)}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "task %q not found", req.GetTaskId())
}

// findNetwork resolves ref like the real manager: ID, name or unique ID prefix.
func (f *fakeControl) findNetwork(ref string) (*api.Network, error) {
	return ctltest.FindRef("network", ref, f.networks, networkName)
}

// CreateNetwork refuses a subnet overlapping another network's, as the
// manager does, and otherwise allocates the next VNI from 4097.
func (f *fakeControl) CreateNetwork(_ context.Context, req *api.CreateNetworkRequest) (*api.CreateNetworkResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("CreateNetwork")
	f.networkCreates = append(f.networkCreates, proto.Clone(req).(*api.CreateNetworkRequest))
	for _, c := range req.GetSpec().GetIpam() {
		p, err := netip.ParsePrefix(c.GetSubnet())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "subnet %q: %v", c.GetSubnet(), err)
		}
		for _, other := range f.networks {
			for _, oc := range other.GetSpec().GetIpam() {
				if netip.MustParsePrefix(oc.GetSubnet()).Overlaps(p) {
					return nil, status.Errorf(codes.InvalidArgument, "subnet %s overlaps subnet %s of network %s",
						p, oc.GetSubnet(), networkName(other))
				}
			}
		}
	}
	n := &api.Network{
		Id:   idNewNetwork,
		Meta: &api.Meta{Version: 1},
		Spec: proto.Clone(req.GetSpec()).(*api.NetworkSpec),
		Vni:  uint32(4097 + len(f.networks)),
	}
	f.networks = append(f.networks, n)
	return &api.CreateNetworkResponse{Network: proto.Clone(n).(*api.Network)}, nil
}

func (f *fakeControl) GetNetwork(_ context.Context, req *api.GetNetworkRequest) (*api.GetNetworkResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("GetNetwork")
	n, err := f.findNetwork(req.GetNetworkId())
	if err != nil {
		return nil, err
	}
	return &api.GetNetworkResponse{Network: proto.Clone(n).(*api.Network)}, nil
}

func (f *fakeControl) ListNetworks(context.Context, *api.ListNetworksRequest) (*api.ListNetworksResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListNetworks")
	resp := &api.ListNetworksResponse{}
	for _, n := range f.networks {
		resp.Networks = append(resp.Networks, proto.Clone(n).(*api.Network))
	}
	return resp, nil
}

func (f *fakeControl) RemoveNetwork(_ context.Context, req *api.RemoveNetworkRequest) (*api.RemoveNetworkResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveNetwork")
	n, err := f.findNetwork(req.GetNetworkId())
	if err != nil {
		return nil, err
	}
	if users := f.networkUsers[n.GetId()]; len(users) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "network %s is in use by services %s",
			networkName(n), strings.Join(users, ", "))
	}
	f.networkRemovals = append(f.networkRemovals, n.GetId())
	f.networks = slices.DeleteFunc(f.networks, func(cand *api.Network) bool { return cand == n })
	return &api.RemoveNetworkResponse{}, nil
}

// ListBindings filters by service and network, each named as the manager
// accepts (ID, name or unique ID prefix).
func (f *fakeControl) ListBindings(_ context.Context, req *api.ListBindingsRequest) (*api.ListBindingsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ListBindings")
	return ctltest.ListBindings(req, f.services, f.networks, f.bindings)
}

func slicesDelete(nodes []*api.Node, n *api.Node) []*api.Node {
	out := nodes[:0]
	for _, cand := range nodes {
		if cand != n {
			out = append(out, cand)
		}
	}
	return out
}

// serve starts f on a unix socket and returns the socket's path. The
// server stops when the test ends.
func serve(t *testing.T, f *fakeControl) string { return ctltest.Serve(t, f) }

// checkHasLines fails t unless out, a human-readable summary, has every
// line of want. Lines compare with their runs of spaces collapsed: the
// summary aligns its values.
func checkHasLines(t *testing.T, out string, want []string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	for _, line := range want {
		if !slices.Contains(lines, line) {
			t.Errorf("output lacks line %q:\n%s", line, out)
		}
	}
}

// checkRequests fails t unless got, the requests f recorded of one RPC,
// are want.
func checkRequests[M proto.Message](t *testing.T, f *fakeControl, rpc string, got *[]M, want []M) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(*got) != len(want) {
		t.Fatalf("%d %s calls %v, want %d", len(*got), rpc, *got, len(want))
	}
	for i := range want {
		if !proto.Equal((*got)[i], want[i]) {
			t.Errorf("%s call %d:\ngot  %v\nwant %v", rpc, i+1, (*got)[i], want[i])
		}
	}
}

// shoalctl runs the CLI against sock with args.
func shoalctl(t *testing.T, sock string, args ...string) ctltest.Result {
	t.Helper()
	return ctltest.Run(run, sock, args...)
}

// fixedTime is when the fixture cluster's nodes were created.
var fixedTime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// Test fixtures: a cluster of three managers and three workers.
const (
	idLeader    = "m1leader0000000000000000a"
	idReachable = "m2reach00000000000000000b"
	idUnreach   = "m3unreach000000000000000c"
	idWorkerA   = "w1ready000000000000000000d"
	idWorkerB   = "w2down0000000000000000000e"
	idWorkerC   = "w3disc0000000000000000000f"

	workerToken  = "SHOAL-1-digest-workersecret"
	managerToken = "SHOAL-1-digest-managersecret"
	caKey        = "-----BEGIN EC PRIVATE KEY-----secret"
)

func managerNode(id, host, addr string, leader bool, reach api.Reachability) *api.Node {
	return &api.Node{
		Id:   id,
		Meta: &api.Meta{Version: 7, CreatedAt: timestamppb.New(fixedTime)},
		Spec: &api.NodeSpec{
			DesiredRole:  api.NodeRole_NODE_ROLE_MANAGER,
			Availability: api.NodeAvailability_NODE_AVAILABILITY_ACTIVE,
		},
		Description:   &api.NodeDescription{Hostname: host, Os: "linux", Arch: "amd64"},
		Status:        &api.NodeStatus{State: api.NodeState_NODE_STATE_READY, Addr: strings.Split(addr, ":")[0]},
		ManagerStatus: &api.ManagerStatus{RaftId: 1, Addr: addr, Leader: leader, Reachability: reach},
		Role:          api.NodeRole_NODE_ROLE_MANAGER,
		Certificate: &api.NodeCertificate{
			Role:     api.NodeRole_NODE_ROLE_MANAGER,
			NotAfter: timestamppb.New(fixedTime.AddDate(0, 3, 0)),
		},
	}
}

func workerNode(id, host string, state api.NodeState, av api.NodeAvailability) *api.Node {
	return &api.Node{
		Id:   id,
		Meta: &api.Meta{Version: 11},
		Spec: &api.NodeSpec{
			Annotations:  &api.Annotations{Labels: map[string]string{"zone": "a"}},
			Availability: av,
		},
		Description: &api.NodeDescription{Hostname: host},
		Status:      &api.NodeStatus{State: state},
	}
}

// newFakeCluster returns a fake serving a six-node cluster whose socket
// belongs to the reachable manager mgr-2.
func newFakeCluster() *fakeControl {
	return &fakeControl{
		cluster: &api.GetClusterResponse{
			Cluster: &api.Cluster{
				Id: "clus7x9",
				Spec: &api.ClusterSpec{
					Annotations: &api.Annotations{Name: "default"},
					CaConfig:    &api.CAConfig{NodeCertExpiry: durationpb.New(90 * 24 * time.Hour)},
					Raft:        &api.RaftConfig{SnapshotInterval: 10000, HeartbeatTick: 1, ElectionTick: 10},
					Dispatcher:  &api.DispatcherConfig{HeartbeatPeriod: durationpb.New(5 * time.Second)},
				},
				RootCa: &api.RootCA{
					CaCertPem:    []byte("-----BEGIN CERTIFICATE-----"),
					CaKeyPem:     []byte(caKey),
					CaCertDigest: "1x2y3z",
					JoinTokens:   &api.JoinTokens{Worker: workerToken, Manager: managerToken},
				},
			},
			LeaderId:         idLeader,
			RaftTerm:         4,
			RaftAppliedIndex: 1234,
			ManagerNodeId:    idReachable,
		},
		nodes: []*api.Node{
			workerNode(idWorkerB, "node-2", api.NodeState_NODE_STATE_DOWN, api.NodeAvailability_NODE_AVAILABILITY_DRAIN),
			managerNode(idUnreach, "mgr-3", "10.0.0.3:4242", false, api.Reachability_REACHABILITY_UNREACHABLE),
			workerNode(idWorkerA, "node-1", api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE),
			managerNode(idReachable, "mgr-2", "10.0.0.2:4242", false, api.Reachability_REACHABILITY_REACHABLE),
			workerNode(idWorkerC, "node-3", api.NodeState_NODE_STATE_DISCONNECTED, api.NodeAvailability_NODE_AVAILABILITY_PAUSE),
			managerNode(idLeader, "mgr-1", "10.0.0.1:4242", true, api.Reachability_REACHABILITY_REACHABLE),
		},
	}
}

// Service fixtures: a replicated "web" mid-way through an update (one slot
// pending, history under slot 1) and a global "api" on two workers. Task
// ages are measured against fixedNow.
const (
	idWeb        = "websvc0000000000000000001"
	idAPI        = "apisvc0000000000000000002"
	idNewService = "newsvc0000000000000000009"

	noNodeReason = "no suitable node (1 node not available, 2 nodes lack 2 CPUs)"
)

var fixedNow = fixedTime.Add(time.Hour)

// fixClock makes task ages count from fixedNow for the test.
func fixClock(t *testing.T) {
	t.Helper()
	old := now
	now = func() time.Time { return fixedNow }
	t.Cleanup(func() { now = old })
}

// fastPolling makes followers poll without waiting.
func fastPolling(t *testing.T) {
	t.Helper()
	old := progressInterval
	progressInterval = time.Millisecond
	t.Cleanup(func() { progressInterval = old })
}

func webSpec() *api.ServiceSpec {
	return &api.ServiceSpec{
		Annotations: &api.Annotations{Name: "web", Labels: map[string]string{"team": "edge"}},
		Task: &api.TaskSpec{
			Container: &api.ContainerSpec{
				Image: "nginx:1.27@sha256:0123456789abcdef",
				Env:   []string{"A=1", "B=2"},
			},
			Placement: &api.Placement{Constraints: []string{"node.labels.zone==a"}},
		},
		Mode:     &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 3}},
		Update:   &api.UpdateConfig{Parallelism: 1},
		Rollback: &api.UpdateConfig{Parallelism: 1},
		Endpoint: &api.EndpointSpec{Ports: []*api.PortConfig{
			{TargetPort: 80, PublishedPort: 8080},
			{TargetPort: 53, PublishedPort: 5353, Protocol: api.PortConfig_PROTOCOL_UDP},
		}},
	}
}

func webService() *api.Service {
	prev := webSpec()
	prev.Task.Container.Image = "nginx:1.26"
	return &api.Service{
		Id:                  idWeb,
		Meta:                &api.Meta{Version: 20, CreatedAt: timestamppb.New(fixedTime)},
		Spec:                webSpec(),
		SpecVersion:         2,
		PreviousSpec:        prev,
		PreviousSpecVersion: 1,
	}
}

func apiService() *api.Service {
	return &api.Service{
		Id:   idAPI,
		Meta: &api.Meta{Version: 30},
		Spec: &api.ServiceSpec{
			Annotations: &api.Annotations{Name: "api"},
			Task:        &api.TaskSpec{Container: &api.ContainerSpec{Image: "example/api:2"}},
			Mode:        &api.ServiceSpec_Global{Global: &api.GlobalService{}},
			Endpoint: &api.EndpointSpec{Ports: []*api.PortConfig{
				{TargetPort: 9000, PublishedPort: 9000, PublishMode: api.PortConfig_PUBLISH_MODE_HOST},
			}},
		},
		SpecVersion: 1,
	}
}

// taskFixture describes a task of a fixture service.
type taskFixture struct {
	id             string
	slot           uint64
	node           string
	version        uint64
	desired, state api.TaskState
	// created and changed are how long before fixedNow the task was made
	// and reached state.
	created, changed time.Duration
	msg, err         string
}

func (tf taskFixture) of(svc *api.Service) *api.Task {
	return &api.Task{
		Id:           tf.id,
		Meta:         &api.Meta{Version: 1, CreatedAt: timestamppb.New(fixedNow.Add(-tf.created))},
		ServiceId:    svc.GetId(),
		ServiceName:  serviceName(svc),
		Slot:         tf.slot,
		NodeId:       tf.node,
		Spec:         proto.Clone(svc.GetSpec().GetTask()).(*api.TaskSpec),
		SpecVersion:  tf.version,
		DesiredState: tf.desired,
		Status: &api.TaskStatus{
			State:     tf.state,
			Timestamp: timestamppb.New(fixedNow.Add(-tf.changed)),
			Message:   tf.msg,
			Err:       tf.err,
		},
		Endpoint: proto.Clone(svc.GetSpec().GetEndpoint()).(*api.EndpointSpec),
	}
}

const (
	running  = api.TaskState_TASK_STATE_RUNNING
	pending  = api.TaskState_TASK_STATE_PENDING
	shutdown = api.TaskState_TASK_STATE_SHUTDOWN
	failed   = api.TaskState_TASK_STATE_FAILED
)

func webTasks() []*api.Task {
	web := webService()
	return []*api.Task{
		taskFixture{id: "webtask1old00000000000001", slot: 1, node: idWorkerA, version: 1,
			desired: shutdown, state: shutdown, created: 2 * time.Hour, changed: 10 * time.Minute}.of(web),
		taskFixture{id: "webtask3new00000000000003", slot: 3, version: 2,
			desired: running, state: pending, created: 3 * time.Second, changed: 3 * time.Second, msg: noNodeReason}.of(web),
		taskFixture{id: "webtask1new00000000000001", slot: 1, node: idWorkerA, version: 2,
			desired: running, state: running, created: time.Minute, changed: 5 * time.Second}.of(web),
		taskFixture{id: "webtask1oom00000000000001", slot: 1, node: idWorkerA, version: 1,
			desired: shutdown, state: failed, created: 3 * time.Hour, changed: 2 * time.Hour,
			err: "task: non-zero exit (137): killed by the OOM killer"}.of(web),
		taskFixture{id: "webtask2new00000000000002", slot: 2, node: idLeader, version: 2,
			desired: running, state: running, created: time.Minute, changed: 50 * time.Second}.of(web),
	}
}

func apiTasks() []*api.Task {
	svc := apiService()
	return []*api.Task{
		taskFixture{id: "apitaskA0000000000000000a", node: idWorkerA, version: 1,
			desired: running, state: running, created: 3 * time.Hour, changed: 3 * time.Hour}.of(svc),
		taskFixture{id: "apitaskC0000000000000000c", node: idWorkerC, version: 1,
			desired: running, state: api.TaskState_TASK_STATE_PREPARING, created: 90 * time.Second, changed: 80 * time.Second}.of(svc),
	}
}

// newFakeServices returns the fake cluster with the fixture services.
func newFakeServices() *fakeControl {
	f := newFakeCluster()
	f.services = []*api.Service{webService(), apiService()}
	f.tasks = append(webTasks(), apiTasks()...)
	return f
}

// Network fixtures: "front", one IPv4 subnet with every option set, and
// "back", dual-stack, used by the web service.
const (
	idFront      = "frontnet00000000000000001"
	idBack       = "backnet000000000000000002"
	idNewNetwork = "newnet0000000000000000009"
)

func frontNetwork() *api.Network {
	return &api.Network{
		Id:   idFront,
		Meta: &api.Meta{Version: 3, CreatedAt: timestamppb.New(fixedTime)},
		Spec: &api.NetworkSpec{
			Annotations: &api.Annotations{Name: "front", Labels: map[string]string{"team": "edge"}},
			Driver:      "overlay",
			Ipam: []*api.IPAMConfig{{
				Subnet:       "10.20.0.0/16",
				Gateway:      "10.20.0.1",
				IpRange:      "10.20.128.0/17",
				AuxAddresses: map[string]string{"router": "10.20.0.2", "dns": "10.20.0.3"},
			}},
			Attachable: true,
			Plugins:    []*api.CNIPlugin{{Type: "bandwidth", ConfigJson: `{"type":"bandwidth","egressRate":1000000}`}},
		},
		Vni: 4097,
	}
}

func backNetwork() *api.Network {
	return &api.Network{
		Id:   idBack,
		Meta: &api.Meta{Version: 5},
		Spec: &api.NetworkSpec{
			Annotations: &api.Annotations{Name: "back"},
			Driver:      "overlay",
			Ipam:        []*api.IPAMConfig{{Subnet: "10.30.0.0/24"}, {Subnet: "fd00:30::/64"}},
		},
		Vni: 4098,
	}
}

// newFakeNetworks returns the fake cluster with the fixture networks.
func newFakeNetworks() *fakeControl {
	f := newFakeCluster()
	f.networks = []*api.Network{frontNetwork(), backNetwork()}
	f.networkUsers = map[string][]string{idBack: {"web", "api"}}
	return f
}
