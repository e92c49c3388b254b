package controlapi_test

// This file holds the test doubles of the Control API's surroundings: a
// proposer that applies proposals at once (raft with no network), a raft
// membership the test controls, and a store seeded with a cluster.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/controlapi"
	"github.com/shoal/shoal/orchestrator/store"
)

// syncProposer applies every proposal to the store at once, in order, the
// way raft would on a single manager.
type syncProposer struct {
	mu    sync.Mutex
	index uint64
	store *store.MemoryStore
}

func (p *syncProposer) Propose(_ context.Context, payload []byte) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	return p.store.Apply(p.index, payload), nil
}

func (p *syncProposer) ReadBarrier(context.Context) error { return nil }

// fakeMembership is a raft group the test describes.
type fakeMembership struct {
	mu        sync.Mutex
	managers  []controlapi.Manager
	leader    string
	term      uint64
	applied   uint64
	removeErr error
	removed   []string
	// onRemove, if set, runs inside RemoveManager after the removal, as
	// another client's write landing meanwhile would.
	onRemove func()
}

func (m *fakeMembership) Managers() []controlapi.Manager {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]controlapi.Manager(nil), m.managers...)
}

func (m *fakeMembership) LeaderNodeID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leader
}

func (m *fakeMembership) Term() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.term
}

func (m *fakeMembership) AppliedIndex() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

// RemoveManager records the call and, unless removeErr is set, drops the
// member the way raft would.
func (m *fakeMembership) RemoveManager(_ context.Context, nodeID string) error {
	m.mu.Lock()
	m.removed = append(m.removed, nodeID)
	if m.removeErr != nil {
		m.mu.Unlock()
		return m.removeErr
	}
	kept := m.managers[:0]
	for _, mg := range m.managers {
		if mg.NodeID != nodeID {
			kept = append(kept, mg)
		}
	}
	m.managers = kept
	onRemove := m.onRemove
	m.mu.Unlock()
	if onRemove != nil {
		onRemove()
	}
	return nil
}

func (m *fakeMembership) setManagers(ms ...controlapi.Manager) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.managers = ms
}

func (m *fakeMembership) removedIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.removed...)
}

const (
	testClusterID = "cluster1"
	localID       = "mgr1local"
)

// testEnv is a Control API server over a store holding one cluster.
type testEnv struct {
	store *store.MemoryStore
	raft  *fakeMembership
	srv   *controlapi.Server
	root  *ca.RootCA
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	s := store.New(store.CheckOf(controlapi.CheckServiceConflicts), store.CheckOf(controlapi.CheckNetworkConflicts),
		store.DeleteCheckOf(controlapi.CheckNetworkRemoval)) // as the manager makes it
	s.SetProposer(&syncProposer{store: s})
	root, err := ca.NewRootCA(testClusterID)
	if err != nil {
		t.Fatalf("NewRootCA: %v", err)
	}
	keyPEM, err := root.KeyPEM()
	if err != nil {
		t.Fatalf("root CA key: %v", err)
	}
	workerToken, err := ca.GenerateJoinToken(root)
	if err != nil {
		t.Fatalf("GenerateJoinToken: %v", err)
	}
	managerToken, err := ca.GenerateJoinToken(root)
	if err != nil {
		t.Fatalf("GenerateJoinToken: %v", err)
	}
	cluster := &api.Cluster{
		Id:   testClusterID,
		Spec: &api.ClusterSpec{Annotations: &api.Annotations{Name: "default"}},
		RootCa: &api.RootCA{
			CaCertPem:    root.CertPEM,
			CaKeyPem:     keyPEM,
			CaCertDigest: root.Digest(),
			JoinTokens:   &api.JoinTokens{Worker: workerToken, Manager: managerToken},
		},
	}
	if err := s.Update(t.Context(), func(tx store.Tx) error { return tx.Create(cluster) }); err != nil {
		t.Fatalf("create cluster: %v", err)
	}
	m := &fakeMembership{
		managers: []controlapi.Manager{{NodeID: localID, RaftID: 1, Addr: "10.0.0.1:4242", Leader: true, Reachable: true}},
		leader:   localID,
		term:     7,
		applied:  42,
	}
	return &testEnv{
		store: s,
		raft:  m,
		srv:   controlapi.NewServer(s, m, localID, slog.New(slog.DiscardHandler)),
		root:  root,
	}
}

// addNodes creates nodes in the store.
func (e *testEnv) addNodes(t *testing.T, nodes ...*api.Node) {
	t.Helper()
	err := e.store.Update(t.Context(), func(tx store.Tx) error {
		for _, n := range nodes {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("create nodes: %v", err)
	}
}

func (e *testEnv) node(t *testing.T, id string) *api.Node {
	t.Helper()
	var n *api.Node
	e.store.View(func(tx store.ReadTx) { n = tx.Node(id) })
	if n == nil {
		t.Fatalf("node %s is not in the store", id)
	}
	return n
}

func (e *testEnv) cluster(t *testing.T) *api.Cluster {
	t.Helper()
	var c *api.Cluster
	e.store.View(func(tx store.ReadTx) { c = tx.Cluster(testClusterID) })
	if c == nil {
		t.Fatal("the cluster is not in the store")
	}
	return c
}

func (e *testEnv) snapshot(t *testing.T) []byte {
	t.Helper()
	b, err := e.store.Snapshot()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return b
}

// assertUnchanged fails unless the store's state is still before.
func (e *testEnv) assertUnchanged(t *testing.T, before []byte) {
	t.Helper()
	if !bytes.Equal(before, e.snapshot(t)) {
		t.Error("the refused request changed the store")
	}
}

func managerNode(id, hostname string, state api.NodeState) *api.Node {
	n := workerNode(id, hostname, state)
	n.Spec.DesiredRole = api.NodeRole_NODE_ROLE_MANAGER
	n.Role = api.NodeRole_NODE_ROLE_MANAGER
	return n
}

func workerNode(id, hostname string, state api.NodeState) *api.Node {
	return &api.Node{
		Id:          id,
		Spec:        &api.NodeSpec{Annotations: &api.Annotations{Labels: map[string]string{"zone": "a"}}},
		Description: &api.NodeDescription{Hostname: hostname, Os: "linux", Arch: "amd64"},
		Status:      &api.NodeStatus{State: state, Addr: "10.0.0.9"},
	}
}

// assertCode fails unless err is a status with code want whose message
// contains every one of the fragments.
func assertCode(t *testing.T, err error, want codes.Code, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("got %v (%T), want a gRPC status %v", err, err, want)
	}
	if st.Code() != want {
		t.Fatalf("got %v: %s, want %v", st.Code(), st.Message(), want)
	}
	for _, f := range fragments {
		if !strings.Contains(st.Message(), f) {
			t.Errorf("message %q does not mention %q", st.Message(), f)
		}
	}
}

var errRaftRefused = errors.New("raft refused the change")
