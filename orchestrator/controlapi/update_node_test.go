package controlapi_test

// UpdateNode: input validation, optimistic concurrency, and promotion and
// demotion with their raft side.

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/controlapi"
	"github.com/shoal/shoal/orchestrator/store"
)

// specUpdate is a request changing node id's spec by change, made against
// the node's current version.
func specUpdate(t *testing.T, e *testEnv, id string, change func(*api.NodeSpec)) *api.UpdateNodeRequest {
	t.Helper()
	n := e.node(t, id)
	spec := proto.Clone(n.Spec).(*api.NodeSpec)
	change(spec)
	return &api.UpdateNodeRequest{NodeId: id, NodeVersion: n.Meta.GetVersion(), Spec: spec}
}

func TestUpdateNodeRefusesBadInput(t *testing.T) {
	tests := []struct {
		name     string
		req      func(t *testing.T, e *testEnv) *api.UpdateNodeRequest
		code     codes.Code
		mentions []string
	}{
		{
			name: "empty node_id",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				r := specUpdate(t, e, worker1ID, func(*api.NodeSpec) {})
				r.NodeId = ""
				return r
			},
			code:     codes.InvalidArgument,
			mentions: []string{"node_id"},
		},
		{
			name: "missing spec",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				r := specUpdate(t, e, worker1ID, func(*api.NodeSpec) {})
				r.Spec = nil
				return r
			},
			code:     codes.InvalidArgument,
			mentions: []string{"spec", "missing"},
		},
		{
			name: "unknown desired_role",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				return specUpdate(t, e, worker1ID, func(s *api.NodeSpec) { s.DesiredRole = 5 })
			},
			code:     codes.InvalidArgument,
			mentions: []string{"spec.desired_role", "5"},
		},
		{
			name: "negative desired_role",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				return specUpdate(t, e, worker1ID, func(s *api.NodeSpec) { s.DesiredRole = -1 })
			},
			code:     codes.InvalidArgument,
			mentions: []string{"spec.desired_role"},
		},
		{
			name: "unknown availability",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				return specUpdate(t, e, worker1ID, func(s *api.NodeSpec) { s.Availability = 9 })
			},
			code:     codes.InvalidArgument,
			mentions: []string{"spec.availability", "9"},
		},
		{
			name: "empty label key",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				return specUpdate(t, e, worker1ID, func(s *api.NodeSpec) {
					s.Annotations = &api.Annotations{Labels: map[string]string{"ok": "1", "": "x"}}
				})
			},
			code:     codes.InvalidArgument,
			mentions: []string{"spec.annotations.labels", "empty"},
		},
		{
			name: "bad spec of a manager being demoted",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				return specUpdate(t, e, mgr2ID, func(s *api.NodeSpec) {
					s.DesiredRole = api.NodeRole_NODE_ROLE_WORKER
					s.Availability = 9
				})
			},
			code:     codes.InvalidArgument,
			mentions: []string{"spec.availability"},
		},
		{
			name: "stale node_version",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				r := specUpdate(t, e, worker1ID, func(s *api.NodeSpec) { s.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN })
				r.NodeVersion--
				return r
			},
			code:     codes.Aborted,
			mentions: []string{"node_version", worker1ID},
		},
		{
			name: "node_version from the future",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				r := specUpdate(t, e, worker1ID, func(s *api.NodeSpec) { s.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN })
				r.NodeVersion += 100
				return r
			},
			code:     codes.Aborted,
			mentions: []string{"node_version"},
		},
		{
			name: "stale node_version of a manager being demoted",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				r := specUpdate(t, e, mgr2ID, func(s *api.NodeSpec) { s.DesiredRole = api.NodeRole_NODE_ROLE_WORKER })
				r.NodeVersion--
				return r
			},
			code:     codes.Aborted,
			mentions: []string{"node_version"},
		},
		{
			name: "unknown node",
			req: func(t *testing.T, e *testEnv) *api.UpdateNodeRequest {
				r := specUpdate(t, e, worker1ID, func(*api.NodeSpec) {})
				r.NodeId = "nosuchnode"
				return r
			},
			code:     codes.NotFound,
			mentions: []string{"nosuchnode"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodesEnv(t)
			e.raft.setManagers(leaderMember(), member(mgr2ID, 2, true), member(mgr3ID, 3, true))
			req := tc.req(t, e)
			before := e.snapshot(t)
			_, err := e.srv.UpdateNode(t.Context(), req)
			assertCode(t, err, tc.code, tc.mentions...)
			e.assertUnchanged(t, before)
			if got := e.raft.removedIDs(); len(got) != 0 {
				t.Errorf("a refused update removed raft members %v", got)
			}
		})
	}
}

func TestUpdateNodeChangesSpec(t *testing.T) {
	tests := []struct {
		name   string
		ref    func(n *api.Node) string
		change func(*api.NodeSpec)
	}{
		{
			name:   "drain by ID",
			ref:    func(n *api.Node) string { return n.Id },
			change: func(s *api.NodeSpec) { s.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN },
		},
		{
			name: "labels by hostname",
			ref:  func(n *api.Node) string { return n.Description.Hostname },
			change: func(s *api.NodeSpec) {
				s.Annotations = &api.Annotations{Labels: map[string]string{"zone": "b", "disk": "ssd"}}
			},
		},
		{
			name:   "promote by ID prefix",
			ref:    func(n *api.Node) string { return n.Id[:4] },
			change: func(s *api.NodeSpec) { s.DesiredRole = api.NodeRole_NODE_ROLE_MANAGER },
		},
		{
			name:   "same spec again",
			ref:    func(n *api.Node) string { return n.Id },
			change: func(*api.NodeSpec) {},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodesEnv(t)
			before := e.node(t, worker1ID)
			req := specUpdate(t, e, worker1ID, tc.change)
			req.NodeId = tc.ref(before)

			resp, err := e.srv.UpdateNode(t.Context(), req)
			if err != nil {
				t.Fatalf("UpdateNode: %v", err)
			}
			after := e.node(t, worker1ID)
			if !proto.Equal(after.Spec, req.Spec) {
				t.Errorf("stored spec %v, want %v", after.Spec, req.Spec)
			}
			if after.Meta.GetVersion() <= before.Meta.GetVersion() {
				t.Errorf("version %d did not move past %d", after.Meta.GetVersion(), before.Meta.GetVersion())
			}
			if !proto.Equal(after.Description, before.Description) || !proto.Equal(after.Status, before.Status) {
				t.Error("UpdateNode changed more than the spec")
			}
			if resp.GetNode().GetId() != worker1ID || !proto.Equal(resp.GetNode().GetSpec(), req.Spec) {
				t.Errorf("response node %v does not carry the new spec", resp.GetNode())
			}
			if got := e.raft.removedIDs(); len(got) != 0 {
				t.Errorf("updating a worker removed raft members %v", got)
			}
		})
	}
}

// The response should be the node as committed, so a client can chain a
// second update on the version it got back.
func TestUpdateNodeResponseCarriesCommittedVersion(t *testing.T) {
	e := newNodesEnv(t)
	req := specUpdate(t, e, worker1ID, func(s *api.NodeSpec) { s.Availability = api.NodeAvailability_NODE_AVAILABILITY_PAUSE })
	resp, err := e.srv.UpdateNode(t.Context(), req)
	if err != nil {
		t.Fatalf("UpdateNode: %v", err)
	}
	stored := e.node(t, worker1ID)
	if got, want := resp.GetNode().GetMeta().GetVersion(), stored.Meta.GetVersion(); got != want {
		t.Fatalf("response says version %d, the store has %d", got, want)
	}
	// Chaining on the response must work.
	next := &api.UpdateNodeRequest{
		NodeId:      worker1ID,
		NodeVersion: resp.GetNode().GetMeta().GetVersion(),
		Spec:        &api.NodeSpec{Availability: api.NodeAvailability_NODE_AVAILABILITY_ACTIVE},
	}
	if _, err := e.srv.UpdateNode(t.Context(), next); err != nil {
		t.Fatalf("update chained on the response: %v", err)
	}
}

func TestUpdateNodeRefusesDemotion(t *testing.T) {
	tests := []struct {
		name      string
		managers  []controlapi.Manager
		target    string
		removeErr error
		mentions  []string
		// removeCalled says whether raft was asked (and refused).
		removeCalled bool
	}{
		{
			name:     "last manager",
			managers: []controlapi.Manager{leaderMember()},
			target:   localID,
			mentions: []string{"last manager", localID},
		},
		{
			name:     "3 managers, one of the other two unreachable",
			managers: []controlapi.Manager{leaderMember(), member(mgr2ID, 2, true), member(mgr3ID, 3, false)},
			target:   mgr2ID,
			mentions: []string{"quorum", mgr2ID},
		},
		{
			name: "5 managers, two of the other four unreachable",
			managers: []controlapi.Manager{
				leaderMember(), member(mgr2ID, 2, true), member(mgr3ID, 3, false),
				member(mgr4ID, 4, false), member(mgr5ID, 5, true),
			},
			target:   mgr5ID,
			mentions: []string{"quorum", mgr5ID},
		},
		{
			name:     "2 managers, the other one unreachable",
			managers: []controlapi.Manager{leaderMember(), member(mgr2ID, 2, false)},
			target:   localID,
			mentions: []string{"quorum"},
		},
		{
			name:         "raft refuses the removal",
			managers:     []controlapi.Manager{leaderMember(), member(mgr2ID, 2, true), member(mgr3ID, 3, true)},
			target:       mgr3ID,
			removeErr:    errRaftRefused,
			mentions:     []string{mgr3ID, errRaftRefused.Error()},
			removeCalled: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodesEnv(t)
			e.raft.setManagers(tc.managers...)
			e.raft.removeErr = tc.removeErr
			specBefore := e.node(t, tc.target).Spec
			req := specUpdate(t, e, tc.target, func(s *api.NodeSpec) { s.DesiredRole = api.NodeRole_NODE_ROLE_WORKER })
			before := e.snapshot(t)

			_, err := e.srv.UpdateNode(t.Context(), req)
			assertCode(t, err, codes.FailedPrecondition, tc.mentions...)
			e.assertUnchanged(t, before)
			if got := e.node(t, tc.target).Spec; !proto.Equal(got, specBefore) {
				t.Errorf("spec changed to %v", got)
			}
			removed := e.raft.removedIDs()
			if tc.removeCalled && !slices.Equal(removed, []string{tc.target}) {
				t.Errorf("RemoveManager calls %v, want [%s]", removed, tc.target)
			}
			if !tc.removeCalled && len(removed) != 0 {
				t.Errorf("RemoveManager was called for %v; the demotion should have been refused first", removed)
			}
		})
	}
}

func TestUpdateNodeDemotes(t *testing.T) {
	tests := []struct {
		name     string
		managers []controlapi.Manager
		target   string
		// inRaft says whether the target is a raft member to remove.
		inRaft bool
	}{
		{
			name:     "3 reachable managers",
			managers: []controlapi.Manager{leaderMember(), member(mgr2ID, 2, true), member(mgr3ID, 3, true)},
			target:   mgr2ID,
			inRaft:   true,
		},
		{
			name:     "the unreachable one of 3",
			managers: []controlapi.Manager{leaderMember(), member(mgr2ID, 2, true), member(mgr3ID, 3, false)},
			target:   mgr3ID,
			inRaft:   true,
		},
		{
			name:     "2 managers, both reachable",
			managers: []controlapi.Manager{leaderMember(), member(mgr2ID, 2, true)},
			target:   mgr2ID,
			inRaft:   true,
		},
		{
			name: "5 managers, one other unreachable",
			managers: []controlapi.Manager{
				leaderMember(), member(mgr2ID, 2, true), member(mgr3ID, 3, true),
				member(mgr4ID, 4, false), member(mgr5ID, 5, true),
			},
			target: mgr2ID,
			inRaft: true,
		},
		{
			name:     "manager by spec that is not a raft member",
			managers: []controlapi.Manager{leaderMember()},
			target:   mgr4ID,
			inRaft:   false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodesEnv(t)
			e.raft.setManagers(tc.managers...)
			before := e.node(t, tc.target)
			req := specUpdate(t, e, tc.target, func(s *api.NodeSpec) { s.DesiredRole = api.NodeRole_NODE_ROLE_WORKER })

			if _, err := e.srv.UpdateNode(t.Context(), req); err != nil {
				t.Fatalf("UpdateNode: %v", err)
			}
			removed := e.raft.removedIDs()
			if tc.inRaft && !slices.Equal(removed, []string{tc.target}) {
				t.Errorf("RemoveManager calls %v, want [%s]", removed, tc.target)
			}
			if !tc.inRaft && len(removed) != 0 {
				t.Errorf("RemoveManager called for %v, the node is not a raft member", removed)
			}
			after := e.node(t, tc.target)
			if after.Spec.GetDesiredRole() != api.NodeRole_NODE_ROLE_WORKER {
				t.Errorf("desired role %v, want worker", after.Spec.GetDesiredRole())
			}
			if after.Meta.GetVersion() <= before.Meta.GetVersion() {
				t.Errorf("version %d did not move past %d", after.Meta.GetVersion(), before.Meta.GetVersion())
			}
		})
	}
}

// A write that lands between the demoted node leaving raft and the demotion
// being recorded is kept: the demotion changes only the desired role.
func TestUpdateNodeDemotionKeepsAConcurrentChange(t *testing.T) {
	e := newTestEnv(t)
	e.raft.setManagers(leaderMember(), member(mgr2ID, 2, true), member(mgr3ID, 3, true))
	e.addNodes(t, managerNode(mgr2ID, "mgr2", api.NodeState_NODE_STATE_READY))
	req := specUpdate(t, e, mgr2ID, func(s *api.NodeSpec) { s.DesiredRole = api.NodeRole_NODE_ROLE_WORKER })
	e.raft.onRemove = func() {
		err := e.store.Update(context.Background(), func(tx store.Tx) error {
			n := tx.Node(mgr2ID)
			n.Spec.Annotations = &api.Annotations{Labels: map[string]string{"zone": "b"}}
			return tx.Update(n)
		})
		if err != nil {
			t.Errorf("concurrent write: %v", err)
		}
	}
	if _, err := e.srv.UpdateNode(context.Background(), req); err != nil {
		t.Fatalf("UpdateNode: %v", err)
	}
	n := e.node(t, mgr2ID)
	if n.Spec.GetDesiredRole() != api.NodeRole_NODE_ROLE_WORKER {
		t.Fatalf("desired role %v, want worker", n.Spec.GetDesiredRole())
	}
	if n.Spec.GetAnnotations().GetLabels()["zone"] != "b" {
		t.Fatalf("the concurrent label was lost: %v", n.Spec.GetAnnotations().GetLabels())
	}
}
