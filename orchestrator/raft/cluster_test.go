package raft

// This file is the test harness: an in-process cluster of nodes, each behind
// its own gRPC server on loopback (insecure credentials), with a state dir in
// t.TempDir and a recording state machine. A node's gRPC server outlives the
// node, so a stopped node can be restarted at the same address.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

// waitTimeout bounds every eventually-style wait; generous because tests run
// under -race on a shared 2-core machine.
const waitTimeout = 60 * time.Second

// testSM records every applied payload in order.
type testSM struct {
	mu           sync.Mutex
	entries      []testEntry
	restores     int
	restoreIndex uint64
}

type testEntry struct {
	Index   uint64 `json:"i"`
	Payload string `json:"p"`
}

func (s *testSM) Apply(index uint64, payload []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, testEntry{Index: index, Payload: string(payload)})
	return fmt.Sprintf("%d:%s", index, payload)
}

func (s *testSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.entries)
}

func (s *testSM) Restore(index uint64, state []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var entries []testEntry
	if err := json.Unmarshal(state, &entries); err != nil {
		return err
	}
	if n := len(entries); n > 0 && entries[n-1].Index > index {
		return fmt.Errorf("snapshot at %d holds entry %d", index, entries[n-1].Index)
	}
	s.entries = entries
	s.restores++
	s.restoreIndex = index
	return nil
}

func (s *testSM) payloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.Payload
	}
	return out
}

func (s *testSM) restoreCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores
}

// swapServer is the Raft service of a test node's gRPC server; it forwards
// to the node running at that address now, if any.
type swapServer struct {
	api.UnimplementedRaftServer
	mu  sync.Mutex
	cur api.RaftServer
}

func (s *swapServer) set(srv api.RaftServer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = srv
}

func (s *swapServer) get() (api.RaftServer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil, status.Error(codes.Unavailable, "no node at this address")
	}
	return s.cur, nil
}

func (s *swapServer) Stream(stream grpc.ClientStreamingServer[api.RaftMessage, api.RaftStreamResponse]) error {
	srv, err := s.get()
	if err != nil {
		return err
	}
	return srv.Stream(stream)
}

func (s *swapServer) Join(ctx context.Context, req *api.JoinRaftRequest) (*api.JoinRaftResponse, error) {
	srv, err := s.get()
	if err != nil {
		return nil, err
	}
	return srv.Join(ctx, req)
}

func (s *swapServer) Leave(ctx context.Context, req *api.LeaveRaftRequest) (*api.LeaveRaftResponse, error) {
	srv, err := s.get()
	if err != nil {
		return nil, err
	}
	return srv.Leave(ctx, req)
}

func (s *swapServer) Ping(ctx context.Context, req *api.PingRequest) (*api.PingResponse, error) {
	srv, err := s.get()
	if err != nil {
		return nil, err
	}
	return srv.Ping(ctx, req)
}

func insecureDial(_ context.Context, addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// testNode is one slot of the cluster: a gRPC server, a state dir, and the
// node currently running there (nil when stopped).
type testNode struct {
	name string
	dir  string
	addr string
	srv  *swapServer
	node *Node
	sm   *testSM
}

type testCluster struct {
	t      testing.TB
	cfg    Config // template; NodeID, Addr, StateDir are filled per node
	nodes  []*testNode
	logger *slog.Logger

	// newSM, if set, makes the state machines instead of testSM (the
	// slot's sm is then nil).
	newSM func() StateMachine

	dropMu sync.Mutex
	drop   dropFunc
}

// testConfig is the fast configuration tests use.
func testConfig() Config {
	return Config{
		TickInterval:    20 * time.Millisecond,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Dial:            insecureDial,
		pingInterval:    100 * time.Millisecond,
		reachableWindow: time.Second,
	}
}

// newTestCluster starts size nodes: the first bootstraps, the others join
// through the first.
func newTestCluster(t testing.TB, size int, cfg Config) *testCluster {
	t.Helper()
	return startTestCluster(&testCluster{t: t, cfg: cfg, logger: testLogger(t)}, size)
}

func startTestCluster(c *testCluster, size int) *testCluster {
	t := c.t
	t.Helper()
	for range size {
		c.addSlot()
	}
	t.Cleanup(c.stopAll)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.create(0).Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap node 0: %v", err)
	}
	for i := 1; i < size; i++ {
		c.join(i, 0)
	}
	return c
}

// addSlot adds a slot with a running gRPC server and no node.
func (c *testCluster) addSlot() int {
	c.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsgSize), grpc.MaxSendMsgSize(maxMsgSize))
	swap := &swapServer{}
	api.RegisterRaftServer(srv, swap)
	go func() { _ = srv.Serve(lis) }()
	c.t.Cleanup(srv.Stop)
	i := len(c.nodes)
	c.t.Cleanup(func() { c.stop(i) })
	c.nodes = append(c.nodes, &testNode{
		name: fmt.Sprintf("manager-%d", i),
		dir:  c.t.TempDir(),
		addr: lis.Addr().String(),
		srv:  swap,
	})
	return i
}

// create makes a fresh node (not started) with an empty state machine in
// slot i and puts it behind the slot's server.
func (c *testCluster) create(i int) *Node {
	c.t.Helper()
	s := c.nodes[i]
	cfg := c.cfg
	cfg.NodeID, cfg.Addr, cfg.StateDir = s.name, s.addr, s.dir
	cfg.Logger = c.logger.With("slot", i)
	var sm StateMachine
	if c.newSM != nil {
		s.sm, sm = nil, c.newSM()
	} else {
		s.sm = &testSM{}
		sm = s.sm
	}
	n, err := NewNode(cfg, sm)
	if err != nil {
		c.t.Fatalf("new node %d: %v", i, err)
	}
	c.dropMu.Lock()
	if c.drop != nil {
		n.transport.setDropFilter(c.drop)
	}
	c.dropMu.Unlock()
	s.node = n
	s.srv.set(n.Server())
	return n
}

// join starts slot i as a new member, joining through slot via.
func (c *testCluster) join(i, via int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.create(i).Join(ctx, c.nodes[via].addr); err != nil {
		c.t.Fatalf("node %d join via %d: %v", i, via, err)
	}
}

// restart starts slot i again from its state dir, with a new state machine.
func (c *testCluster) restart(i int) {
	c.t.Helper()
	if err := c.create(i).Restart(context.Background()); err != nil {
		c.t.Fatalf("restart node %d: %v", i, err)
	}
}

// stop stops the node in slot i, as abruptly as the API allows.
func (c *testCluster) stop(i int) {
	s := c.nodes[i]
	if s.node == nil {
		return
	}
	s.srv.set(nil)
	s.node.Stop()
	s.node = nil
}

func (c *testCluster) stopAll() {
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Go(func() { c.stop(i) })
	}
	wg.Wait()
}

func (c *testCluster) node(i int) *Node { return c.nodes[i].node }

func (c *testCluster) running() []int {
	var out []int
	for i, s := range c.nodes {
		if s.node != nil {
			out = append(out, i)
		}
	}
	return out
}

// setDrop installs f as the drop filter of every node, now and later.
func (c *testCluster) setDrop(f dropFunc) {
	c.dropMu.Lock()
	c.drop = f
	c.dropMu.Unlock()
	for _, s := range c.nodes {
		if s.node != nil {
			s.node.transport.setDropFilter(f)
		}
	}
}

// isolate cuts slot i off from every other node, both directions.
func (c *testCluster) isolate(i int) {
	id := c.node(i).Status().RaftID
	c.setDrop(func(from, to uint64, _ *raftpb.Message) bool { return from == id || to == id })
}

func (c *testCluster) heal() { c.setDrop(nil) }

// waitLeader waits until one running node leads and every running node in
// among agrees; it returns the leader's slot.
func (c *testCluster) waitLeader(among ...int) int {
	c.t.Helper()
	if len(among) == 0 {
		among = c.running()
	}
	leader := -1
	eventually(c.t, "a leader all nodes agree on", func() bool {
		leader = -1
		var leadID uint64
		for _, i := range among {
			st := c.node(i).Status()
			if st.IsLeader {
				leader, leadID = i, st.RaftID
			}
		}
		if leader < 0 {
			return false
		}
		for _, i := range among {
			if c.node(i).Status().LeaderID != leadID {
				return false
			}
		}
		return true
	})
	return leader
}

// propose proposes payload through slot i, retrying while there is no
// leader or raft dropped the proposal (both mean it was not appended).
func (c *testCluster) propose(i int, payload string) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		res, err := c.node(i).Propose(ctx, []byte(payload))
		if !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrProposalDropped) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *testCluster) mustPropose(i int, payload string) {
	c.t.Helper()
	res, err := c.propose(i, payload)
	if err != nil {
		c.t.Fatalf("propose %q via node %d: %v", payload, i, err)
	}
	if s, _ := res.(string); !strings.HasSuffix(s, ":"+payload) {
		c.t.Fatalf("propose %q via node %d: result %v, want the state machine's result for it", payload, i, res)
	}
}

// waitConverged waits until the state machines of slots among (default: all
// running) hold the same payloads, at least want of them.
func (c *testCluster) waitConverged(want int, among ...int) []string {
	c.t.Helper()
	if len(among) == 0 {
		among = c.running()
	}
	var got []string
	eventually(c.t, fmt.Sprintf("state machines of %v converged on %d entries", among, want), func() bool {
		got = c.nodes[among[0]].sm.payloads()
		if len(got) < want {
			return false
		}
		for _, i := range among[1:] {
			if !slices.Equal(c.nodes[i].sm.payloads(), got) {
				return false
			}
		}
		return true
	})
	return got
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLogger logs warnings and errors to the test log until the test ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testLogWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}

var _ io.Writer = (*testLogWriter)(nil)
