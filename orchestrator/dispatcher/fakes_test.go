package dispatcher_test

// This file holds the test doubles of the dispatcher's surroundings: a
// proposer that applies proposals at once (raft with no network), can hold
// chosen ones back and counts task updates, a raft view the test controls,
// a session stream, and node certificates in gRPC call contexts. The
// doubles of the task side are in taskfakes_test.go.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/dispatcher"
	"github.com/shoal/shoal/orchestrator/store"
)

// syncProposer applies every proposal to the store at once, in order. If
// hold is set, a proposal for which it returns a channel waits for that
// channel to close before it is applied.
//
// It can also play a manager whose store lags the log: what commitUnseen
// commits (another leader's writes) is applied here only by the next read
// barrier or before the next proposal, in log order.
type syncProposer struct {
	store *store.MemoryStore

	holdMu sync.Mutex
	hold   func(*api.StoreTransaction) <-chan struct{}
	// heldApplied receives once for every held proposal applied.
	heldApplied chan struct{}

	mu    sync.Mutex
	index uint64
	// taskUpdates counts the transactions that updated a task.
	taskUpdates int
	// behind makes proposals committed but not applied here: they join
	// unseen.
	behind bool
	unseen [][]byte
	// barrierErr, when set, fails every read barrier.
	barrierErr error
}

func (p *syncProposer) Propose(ctx context.Context, payload []byte) (any, error) {
	p.holdMu.Lock()
	hold := p.hold
	p.holdMu.Unlock()
	if hold != nil {
		var txn api.StoreTransaction
		if err := proto.Unmarshal(payload, &txn); err != nil {
			return nil, err
		}
		if wait := hold(&txn); wait != nil {
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			defer func() { p.heldApplied <- struct{}{} }()
		}
	}
	var txn api.StoreTransaction
	if err := proto.Unmarshal(payload, &txn); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.behind {
		p.unseen = append(p.unseen, payload)
		return nil, nil
	}
	p.catchUp()
	for _, a := range txn.Actions {
		if a.GetTask() != nil && a.Kind == api.StoreAction_KIND_UPDATE {
			p.taskUpdates++
			break
		}
	}
	p.index++
	return p.store.Apply(p.index, payload), nil
}

// catchUp applies the unseen transactions; p.mu is held.
func (p *syncProposer) catchUp() {
	for _, payload := range p.unseen {
		p.index++
		p.store.Apply(p.index, payload)
	}
	p.unseen = nil
}

// taskUpdateCount is how many transactions updated a task so far.
func (p *syncProposer) taskUpdateCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.taskUpdates
}

func (p *syncProposer) ReadBarrier(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.barrierErr != nil {
		return p.barrierErr
	}
	p.catchUp()
	return nil
}

// failBarriers makes every read barrier from now on fail with err.
func (p *syncProposer) failBarriers(err error) {
	p.mu.Lock()
	p.barrierErr = err
	p.mu.Unlock()
}

// commitUnseen commits what fn writes, as another leader would, without
// applying it to this manager's store.
func (e *testEnv) commitUnseen(t *testing.T, fn func(store.Tx) error) {
	t.Helper()
	p := e.proposer
	p.mu.Lock()
	p.behind = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.behind = false
		p.mu.Unlock()
	}()
	if err := e.store.Update(t.Context(), fn); err != nil {
		t.Fatalf("commit unseen: %v", err)
	}
}

func (p *syncProposer) setHold(hold func(*api.StoreTransaction) <-chan struct{}) {
	p.holdMu.Lock()
	p.hold = hold
	p.holdMu.Unlock()
}

// fakeCluster is the raft view the test describes.
type fakeCluster struct {
	mu       sync.Mutex
	leader   string
	managers []string
}

func (c *fakeCluster) LeaderAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

func (c *fakeCluster) ManagerAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.managers...)
}

const testClusterID = "cluster1"

var testManagers = []string{"10.0.0.1:4242", "10.0.0.2:4242", "10.0.0.3:4242"}

// testEnv is a dispatcher over a store holding a cluster whose spec sets the
// heartbeat period, and a root CA to issue node certificates.
type testEnv struct {
	store    *store.MemoryStore
	proposer *syncProposer
	cluster  *fakeCluster
	root     *ca.RootCA
	d        *dispatcher.Dispatcher
}

// newTestEnv returns a dispatcher with heartbeat period period (none set in
// the cluster spec when zero).
func newTestEnv(t *testing.T, period time.Duration) *testEnv {
	t.Helper()
	return newTestEnvWithLogger(t, period, slog.New(slog.DiscardHandler))
}

func newTestEnvWithLogger(t *testing.T, period time.Duration, log *slog.Logger) *testEnv {
	t.Helper()
	s := store.New()
	p := &syncProposer{store: s, heldApplied: make(chan struct{}, 16)}
	s.SetProposer(p)
	root, err := ca.NewRootCA(testClusterID)
	if err != nil {
		t.Fatalf("NewRootCA: %v", err)
	}
	spec := &api.ClusterSpec{}
	if period != 0 {
		spec.Dispatcher = &api.DispatcherConfig{HeartbeatPeriod: durationpb.New(period)}
	}
	if err := s.Update(t.Context(), func(tx store.Tx) error {
		return tx.Create(&api.Cluster{Id: testClusterID, Spec: spec, RootCa: &api.RootCA{CaCertPem: root.CertPEM}})
	}); err != nil {
		t.Fatalf("create cluster: %v", err)
	}
	c := &fakeCluster{leader: testManagers[0], managers: testManagers}
	return &testEnv{store: s, proposer: p, cluster: c, root: root, d: dispatcher.New(s, c, log)}
}

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

// node returns node id as stored, nil if it is not.
func (e *testEnv) node(id string) *api.Node {
	var n *api.Node
	e.store.View(func(tx store.ReadTx) { n = tx.Node(id) })
	return n
}

func (e *testEnv) setDesiredRole(t *testing.T, id string, role api.NodeRole) {
	t.Helper()
	err := e.store.Update(t.Context(), func(tx store.Tx) error {
		n := tx.Node(id)
		if n == nil {
			return errors.New("no node " + id)
		}
		if n.Spec == nil {
			n.Spec = &api.NodeSpec{}
		}
		n.Spec.DesiredRole = role
		return tx.Update(n)
	})
	if err != nil {
		t.Fatalf("set desired role of %s: %v", id, err)
	}
}

func newNode(id string, state api.NodeState) *api.Node {
	return &api.Node{
		Id:     id,
		Spec:   &api.NodeSpec{},
		Status: &api.NodeStatus{State: state},
	}
}

// nodeContext is a gRPC call context from a peer at addr whose verified
// client certificate was issued by the cluster's root CA to node id.
func (e *testEnv) nodeContext(t *testing.T, parent context.Context, id string, addr string) context.Context {
	t.Helper()
	_, csrPEM, err := ca.GenerateKeyAndCSR()
	if err != nil {
		t.Fatalf("GenerateKeyAndCSR: %v", err)
	}
	certPEM, _, err := e.root.IssueNodeCertificate(csrPEM, id, api.NodeRole_NODE_ROLE_WORKER, testClusterID, time.Hour)
	if err != nil {
		t.Fatalf("IssueNodeCertificate: %v", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("issued certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse issued certificate: %v", err)
	}
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatalf("peer address %q: %v", addr, err)
	}
	return peer.NewContext(parent, &peer.Peer{
		Addr: tcp,
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{
			VerifiedChains: [][]*x509.Certificate{{cert, e.root.Cert}},
		}},
	})
}

// run starts the dispatcher, as the manager does on winning an election, and
// returns once it serves. Stopping it is registered as a cleanup; the
// returned stop ends it earlier and waits for Run to return.
func (e *testEnv) run(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitFor):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	probe := e.nodeContext(t, t.Context(), "probe-node", "127.0.0.1:1")
	eventually(t, "the dispatcher serves", func() bool {
		_, err := e.d.Heartbeat(probe, &api.HeartbeatRequest{SessionId: "none"})
		return status.Code(err) == codes.NotFound
	})
	return stop
}

// fakeStream is the server side of a Session stream.
type fakeStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs chan *api.SessionMessage
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) Send(m *api.SessionMessage) error {
	select {
	case f.msgs <- proto.Clone(m).(*api.SessionMessage):
		return nil
	case <-f.ctx.Done():
		return f.ctx.Err()
	}
}

// openSession is one Session call in progress.
type openSession struct {
	stream *fakeStream
	cancel context.CancelFunc
	done   chan error
}

// session opens a Session as node id calling from addr with description
// desc. The call is cancelled and awaited at cleanup.
func (e *testEnv) session(t *testing.T, id, addr string, desc *api.NodeDescription) *openSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ctx = e.nodeContext(t, ctx, id, addr)
	s := &openSession{
		stream: &fakeStream{ctx: ctx, msgs: make(chan *api.SessionMessage, 16)},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { s.done <- e.d.Session(&api.SessionRequest{Description: desc}, s.stream) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(waitFor):
			t.Errorf("the session of %s did not end after its context did", id)
		}
	})
	return s
}

// recv returns the session's next message.
func (s *openSession) recv(t *testing.T) *api.SessionMessage {
	t.Helper()
	select {
	case m := <-s.stream.msgs:
		return m
	case err := <-s.done:
		s.done <- err // keep it for end and cleanup
		t.Fatalf("the session ended (%v) before sending a message", err)
	case <-time.After(waitFor):
		t.Fatal("no session message")
	}
	return nil
}

// end waits for the session to end and returns its error.
func (s *openSession) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(waitFor):
		t.Fatal("the session did not end")
	}
	return nil
}

// ended reports whether the session has ended, without waiting.
func (s *openSession) ended() bool {
	select {
	case err := <-s.done:
		s.done <- err
		return true
	default:
		return false
	}
}

// waitFor bounds every wait; it is generous on purpose: tests wait for
// events, never for time to pass.
const waitFor = 20 * time.Second

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
