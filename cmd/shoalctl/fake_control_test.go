package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
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
	var prefixed []*api.Node
	for _, n := range f.nodes {
		if n.GetId() == ref || n.GetDescription().GetHostname() == ref {
			return n, nil
		}
		if strings.HasPrefix(n.GetId(), ref) {
			prefixed = append(prefixed, n)
		}
	}
	switch len(prefixed) {
	case 0:
		return nil, status.Errorf(codes.NotFound, "node %q not found", ref)
	case 1:
		return prefixed[0], nil
	}
	return nil, status.Errorf(codes.InvalidArgument, "node prefix %q is ambiguous", ref)
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

func slicesDelete(nodes []*api.Node, n *api.Node) []*api.Node {
	out := nodes[:0]
	for _, cand := range nodes {
		if cand != n {
			out = append(out, cand)
		}
	}
	return out
}

// serve starts f on a unix socket in a temporary directory and returns the
// socket's path. The server stops when the test ends.
func serve(t *testing.T, f *fakeControl) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "control.sock")
	if len(sock) > 100 { // sun_path holds 108 bytes
		short, err := os.MkdirTemp("", "shoalctl")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(short) })
		sock = filepath.Join(short, "control.sock")
	}
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen on %s: %v", sock, err)
	}
	srv := grpc.NewServer()
	api.RegisterControlServer(srv, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return sock
}

// result is one shoalctl invocation's outcome.
type result struct {
	stdout, stderr string
	code           int
}

// shoalctl runs the CLI against sock with args.
func shoalctl(t *testing.T, sock string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"--socket", sock}, args...), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
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
