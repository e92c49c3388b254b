package ca

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

// fakeBackend is a map-based Backend.
type fakeBackend struct {
	mu      sync.Mutex
	cluster *api.Cluster
	nodes   map[string]*api.Node
}

func (b *fakeBackend) Cluster(context.Context) (*api.Cluster, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return proto.Clone(b.cluster).(*api.Cluster), nil
}

func (b *fakeBackend) RegisterNode(_ context.Context, n *api.Node) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.nodes[n.GetId()]; ok {
		return fmt.Errorf("node %s already exists", n.GetId())
	}
	b.nodes[n.GetId()] = proto.Clone(n).(*api.Node)
	return nil
}

func (b *fakeBackend) Node(_ context.Context, nodeID string) (*api.Node, error) {
	n, err := b.lookup(nodeID)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", nodeID, err)
	}
	return n, nil
}

func (b *fakeBackend) UpdateNodeCertificate(_ context.Context, nodeID string, cert *api.NodeCertificate) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.nodes[nodeID]
	if !ok {
		return fmt.Errorf("node %s: %w", nodeID, ErrNodeNotFound)
	}
	n.Certificate = proto.Clone(cert).(*api.NodeCertificate)
	n.Role = cert.GetRole()
	return nil
}

// lookup is the Authorizer's NodeLookup.
func (b *fakeBackend) lookup(nodeID string) (*api.Node, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.nodes[nodeID]
	if !ok {
		return nil, ErrNodeNotFound
	}
	return proto.Clone(n).(*api.Node), nil
}

func (b *fakeBackend) updateCluster(f func(*api.Cluster)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b.cluster)
}

func (b *fakeBackend) updateNode(nodeID string, f func(*api.Node)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b.nodes[nodeID])
}

func (b *fakeBackend) removeNode(nodeID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.nodes, nodeID)
}

func (b *fakeBackend) nodeCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.nodes)
}

// testRaft serves Raft.Ping, the manager-only method the tests call.
type testRaft struct{ api.UnimplementedRaftServer }

func (testRaft) Ping(context.Context, *api.PingRequest) (*api.PingResponse, error) {
	return &api.PingResponse{RaftId: 1}, nil
}

// testDispatcher serves Dispatcher.Heartbeat, a method for any node.
type testDispatcher struct {
	api.UnimplementedDispatcherServer
}

func (testDispatcher) Heartbeat(context.Context, *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	return &api.HeartbeatResponse{}, nil
}

// testCluster is a bootstrapped manager serving CA, Raft and Dispatcher on
// a real TLS listener with the Authorizer installed.
type testCluster struct {
	id        string
	addr      string
	backend   *fakeBackend
	managerSC *SecurityConfig

	mu    sync.Mutex
	calls map[string]int // by full method name, before authorization
}

func newTestCluster(t *testing.T, nodeCertExpiry time.Duration) *testCluster {
	t.Helper()
	clusterID, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	managerID, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	rootCA, sc, err := Bootstrap(clusterID, managerID, time.Hour, t.TempDir())
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	tc := &testCluster{
		id: clusterID,
		backend: &fakeBackend{
			cluster: &api.Cluster{
				Id:     clusterID,
				Spec:   &api.ClusterSpec{CaConfig: &api.CAConfig{NodeCertExpiry: durationpb.New(nodeCertExpiry)}},
				RootCa: rootCA,
			},
			nodes: map[string]*api.Node{managerID: {
				Id:   managerID,
				Spec: &api.NodeSpec{DesiredRole: manager},
				Role: manager,
			}},
		},
		managerSC: sc,
		calls:     map[string]int{},
	}
	authz := NewAuthorizer(func() string { return clusterID }, tc.backend.lookup)
	count := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		tc.mu.Lock()
		tc.calls[info.FullMethod]++
		tc.mu.Unlock()
		return handler(ctx, req)
	}
	srv := grpc.NewServer(
		grpc.Creds(sc.ServerCredentials()),
		grpc.ChainUnaryInterceptor(count, authz.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(authz.StreamServerInterceptor()),
	)
	api.RegisterCAServer(srv, NewServer(tc.backend, testLogger(t)))
	api.RegisterRaftServer(srv, testRaft{})
	api.RegisterDispatcherServer(srv, testDispatcher{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc.addr = lis.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return tc
}

func (tc *testCluster) tokens() *api.JoinTokens {
	c, _ := tc.backend.Cluster(context.Background())
	return c.GetRootCa().GetJoinTokens()
}

func (tc *testCluster) callCount(method string) int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.calls[method]
}

// join runs the whole join with token and fails the test on error.
func (tc *testCluster) join(t *testing.T, token string) *SecurityConfig {
	t.Helper()
	sc, err := RequestCertificate(testContext(t), tc.addr, token, &api.NodeDescription{Hostname: "joiner"}, "10.0.0.7:4242", t.TempDir())
	if err != nil {
		t.Fatalf("RequestCertificate: %v", err)
	}
	return sc
}

// dial connects to the test manager as the node of sc.
func (tc *testCluster) dial(t *testing.T, sc *SecurityConfig) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(tc.addr, grpc.WithTransportCredentials(sc.ClientCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
