package controlapi_test

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/controlapi"
	"github.com/shoal/shoal/orchestrator/store"
)

const (
	mgr2ID    = "mgr2second"
	mgr3ID    = "mgr3third"
	mgr4ID    = "mgr4fourth"
	mgr5ID    = "mgr5fifth"
	worker1ID = "wrk1first"
)

// member is a raft member as the fake membership reports it.
func member(nodeID string, raftID uint64, reachable bool) controlapi.Manager {
	return controlapi.Manager{NodeID: nodeID, RaftID: raftID, Addr: nodeID + ":4242", Reachable: reachable}
}

func leaderMember() controlapi.Manager {
	m := member(localID, 1, true)
	m.Leader = true
	return m
}

// newNodesEnv is a cluster of five manager records (raft membership is up
// to each test) and one worker.
func newNodesEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	e.addNodes(t,
		managerNode(localID, "host-local", api.NodeState_NODE_STATE_READY),
		managerNode(mgr2ID, "host-m2", api.NodeState_NODE_STATE_READY),
		managerNode(mgr3ID, "host-m3", api.NodeState_NODE_STATE_READY),
		managerNode(mgr4ID, "host-m4", api.NodeState_NODE_STATE_READY),
		managerNode(mgr5ID, "host-m5", api.NodeState_NODE_STATE_READY),
		workerNode(worker1ID, "host-w1", api.NodeState_NODE_STATE_READY),
	)
	return e
}

func TestRemoveNode(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*api.Node
		req   *api.RemoveNodeRequest
		// code is codes.OK when the node must be gone afterwards.
		code     codes.Code
		mentions []string
	}{
		{
			name: "the local manager",
			req:  &api.RemoveNodeRequest{NodeId: localID, Force: true},
			code: codes.FailedPrecondition, mentions: []string{localID},
		},
		{
			name: "a down manager, even with force",
			req:  &api.RemoveNodeRequest{NodeId: mgr2ID, Force: true},
			code: codes.FailedPrecondition, mentions: []string{mgr2ID, "demote"},
		},
		{
			name:  "a raft member whose spec already says worker",
			nodes: []*api.Node{workerNode("demoting1", "host-d", api.NodeState_NODE_STATE_DOWN)},
			req:   &api.RemoveNodeRequest{NodeId: "demoting1", Force: true},
			code:  codes.FailedPrecondition, mentions: []string{"demoting1", "manager"},
		},
		{
			name:  "a manager by spec outside raft",
			nodes: []*api.Node{managerNode("promoting1", "host-p", api.NodeState_NODE_STATE_DOWN)},
			req:   &api.RemoveNodeRequest{NodeId: "promoting1"},
			code:  codes.FailedPrecondition, mentions: []string{"promoting1", "manager"},
		},
		{
			name:  "a ready worker without force",
			nodes: []*api.Node{workerNode("wready1", "host-r", api.NodeState_NODE_STATE_READY)},
			req:   &api.RemoveNodeRequest{NodeId: "wready1"},
			code:  codes.FailedPrecondition, mentions: []string{"wready1", "force"},
		},
		{
			name:  "a ready worker by hostname without force",
			nodes: []*api.Node{workerNode("wready1", "host-r", api.NodeState_NODE_STATE_READY)},
			req:   &api.RemoveNodeRequest{NodeId: "host-r"},
			code:  codes.FailedPrecondition, mentions: []string{"wready1", "force"},
		},
		{
			name: "empty node_id",
			req:  &api.RemoveNodeRequest{},
			code: codes.InvalidArgument, mentions: []string{"node_id"},
		},
		{
			name: "unknown node",
			req:  &api.RemoveNodeRequest{NodeId: "nosuchnode", Force: true},
			code: codes.NotFound, mentions: []string{"nosuchnode"},
		},
		{
			name:  "a down worker",
			nodes: []*api.Node{workerNode("wdown1", "host-d", api.NodeState_NODE_STATE_DOWN)},
			req:   &api.RemoveNodeRequest{NodeId: "wdown1"},
			code:  codes.OK,
		},
		{
			name:  "a down worker by ID prefix",
			nodes: []*api.Node{workerNode("wdown1", "host-d", api.NodeState_NODE_STATE_DOWN)},
			req:   &api.RemoveNodeRequest{NodeId: "wdo"},
			code:  codes.OK,
		},
		{
			name:  "a ready worker with force",
			nodes: []*api.Node{workerNode("wready1", "host-r", api.NodeState_NODE_STATE_READY)},
			req:   &api.RemoveNodeRequest{NodeId: "wready1", Force: true},
			code:  codes.OK,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.addNodes(t, managerNode(localID, "host-local", api.NodeState_NODE_STATE_READY),
				managerNode(mgr2ID, "host-m2", api.NodeState_NODE_STATE_DOWN))
			if len(tc.nodes) > 0 {
				e.addNodes(t, tc.nodes...)
			}
			e.raft.setManagers(leaderMember(), member(mgr2ID, 2, false), member("demoting1", 3, true))
			before := e.snapshot(t)

			_, err := e.srv.RemoveNode(t.Context(), tc.req)
			if tc.code != codes.OK {
				assertCode(t, err, tc.code, tc.mentions...)
				e.assertUnchanged(t, before)
				return
			}
			if err != nil {
				t.Fatalf("RemoveNode: %v", err)
			}
			var left []string
			e.store.View(func(tx store.ReadTx) {
				for _, n := range tx.Nodes() {
					left = append(left, n.Id)
				}
			})
			if want := []string{localID, mgr2ID}; !slices.Equal(left, want) {
				t.Errorf("nodes left %v, want %v", left, want)
			}
		})
	}
}

func TestGetNodeResolves(t *testing.T) {
	nodes := []*api.Node{
		workerNode("k7q2a1", "alpha", api.NodeState_NODE_STATE_READY),
		workerNode("k7q2b2", "beta", api.NodeState_NODE_STATE_READY),
		workerNode("m9x", "gamma", api.NodeState_NODE_STATE_READY),
		workerNode("m9x4c3", "delta", api.NodeState_NODE_STATE_READY),
		workerNode("p5z001", "twin", api.NodeState_NODE_STATE_READY),
		workerNode("r8w002", "twin", api.NodeState_NODE_STATE_DOWN),
	}
	tests := []struct {
		name     string
		ref      string
		want     string // node ID when found
		code     codes.Code
		mentions []string
	}{
		{name: "exact ID", ref: "k7q2a1", want: "k7q2a1"},
		{name: "exact ID that prefixes another", ref: "m9x", want: "m9x"},
		{name: "unique prefix", ref: "m9x4", want: "m9x4c3"},
		{name: "unique one-letter prefix", ref: "r", want: "r8w002"},
		{name: "hostname", ref: "beta", want: "k7q2b2"},
		{name: "ambiguous prefix", ref: "k7q2", code: codes.InvalidArgument, mentions: []string{"ambiguous", "k7q2a1", "k7q2b2"}},
		{name: "ambiguous hostname", ref: "twin", code: codes.InvalidArgument, mentions: []string{"ambiguous", "p5z001", "r8w002"}},
		{name: "unknown", ref: "zz", code: codes.NotFound, mentions: []string{"zz"}},
		{name: "suffix is not a prefix", ref: "a1", code: codes.NotFound},
		{name: "empty", ref: "", code: codes.InvalidArgument, mentions: []string{"node_id"}},
	}
	e := newTestEnv(t)
	e.addNodes(t, nodes...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.srv.GetNode(t.Context(), &api.GetNodeRequest{NodeId: tc.ref})
			if tc.want == "" {
				assertCode(t, err, tc.code, tc.mentions...)
				return
			}
			if err != nil {
				t.Fatalf("GetNode(%q): %v", tc.ref, err)
			}
			if got := resp.GetNode().GetId(); got != tc.want {
				t.Errorf("GetNode(%q) = %s, want %s", tc.ref, got, tc.want)
			}
		})
	}
}

func TestGetNodeFillsManagerStatus(t *testing.T) {
	e := newNodesEnv(t)
	e.raft.setManagers(leaderMember(), member(mgr2ID, 2, false))
	resp, err := e.srv.GetNode(t.Context(), &api.GetNodeRequest{NodeId: mgr2ID})
	if err != nil {
		t.Fatalf("GetNode: %v", err)
	}
	want := &api.ManagerStatus{RaftId: 2, Addr: mgr2ID + ":4242", Reachability: api.Reachability_REACHABILITY_UNREACHABLE}
	if got := resp.GetNode().GetManagerStatus(); !proto.Equal(got, want) {
		t.Errorf("manager status %v, want %v", got, want)
	}
	resp, err = e.srv.GetNode(t.Context(), &api.GetNodeRequest{NodeId: worker1ID})
	if err != nil {
		t.Fatalf("GetNode: %v", err)
	}
	if got := resp.GetNode().GetManagerStatus(); got != nil {
		t.Errorf("worker has manager status %v", got)
	}
}

func TestListNodesManagerStatus(t *testing.T) {
	e := newNodesEnv(t)
	e.raft.setManagers(leaderMember(), member(mgr2ID, 2, true), member(mgr3ID, 3, false))
	before := e.snapshot(t)

	resp, err := e.srv.ListNodes(t.Context(), &api.ListNodesRequest{})
	if err != nil {
		t.Fatalf("ListNodes: %v", err)
	}
	want := map[string]*api.ManagerStatus{
		localID: {RaftId: 1, Addr: localID + ":4242", Leader: true, Reachability: api.Reachability_REACHABILITY_REACHABLE},
		mgr2ID:  {RaftId: 2, Addr: mgr2ID + ":4242", Reachability: api.Reachability_REACHABILITY_REACHABLE},
		mgr3ID:  {RaftId: 3, Addr: mgr3ID + ":4242", Reachability: api.Reachability_REACHABILITY_UNREACHABLE},
		// mgr4ID and mgr5ID say manager in their spec but are not raft
		// members; worker1ID is a worker: none has a manager status.
	}
	var got []string
	for _, n := range resp.GetNodes() {
		got = append(got, n.Id)
		if w := want[n.Id]; !proto.Equal(n.GetManagerStatus(), w) {
			t.Errorf("node %s: manager status %v, want %v", n.Id, n.GetManagerStatus(), w)
		}
	}
	wantIDs := []string{localID, mgr2ID, mgr3ID, mgr4ID, mgr5ID, worker1ID}
	slices.Sort(wantIDs)
	if !slices.Equal(got, wantIDs) {
		t.Errorf("listed %v, want %v", got, wantIDs)
	}
	// The status is filled on copies, never stored.
	e.assertUnchanged(t, before)
}
