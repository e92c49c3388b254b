package controlapi

// This file owns the node RPCs: list, get (by ID, ID prefix or hostname),
// update (availability, labels, promote and demote) and remove.

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// ListNodes returns every node, managers with their raft status as this
// manager sees it.
func (s *Server) ListNodes(ctx context.Context, _ *api.ListNodesRequest) (*api.ListNodesResponse, error) {
	var nodes []*api.Node
	if err := s.store.ViewLinearizable(ctx, func(tx store.ReadTx) { nodes = tx.Nodes() }); err != nil {
		return nil, toStatus(err)
	}
	s.withManagerStatus(nodes...)
	return &api.ListNodesResponse{Nodes: nodes}, nil
}

// GetNode returns one node.
func (s *Server) GetNode(ctx context.Context, req *api.GetNodeRequest) (*api.GetNodeResponse, error) {
	n, err := s.resolveNode(ctx, req.NodeId)
	if err != nil {
		return nil, err
	}
	s.withManagerStatus(n)
	return &api.GetNodeResponse{Node: n}, nil
}

// UpdateNode changes a node's spec. Demoting a manager removes it from raft
// first, and is refused if that would cost the cluster its quorum.
func (s *Server) UpdateNode(ctx context.Context, req *api.UpdateNodeRequest) (*api.UpdateNodeResponse, error) {
	if req.NodeId == "" {
		return nil, status.Error(codes.InvalidArgument, "node_id: must name a node")
	}
	if err := validateNodeSpec(req.Spec); err != nil {
		return nil, err
	}
	n, err := s.resolveNode(ctx, req.NodeId)
	if err != nil {
		return nil, err
	}
	if req.NodeVersion != n.Meta.GetVersion() {
		return nil, status.Errorf(codes.Aborted, "node_version: node %s is at version %d, not %d; read it again and retry",
			n.Id, n.Meta.GetVersion(), req.NodeVersion)
	}
	demote := n.Spec.GetDesiredRole() == api.NodeRole_NODE_ROLE_MANAGER && req.Spec.DesiredRole == api.NodeRole_NODE_ROLE_WORKER
	if demote && s.isManager(n.Id) {
		if err := s.checkDemote(n); err != nil {
			return nil, err
		}
		if n.Id == s.localID {
			return nil, status.Errorf(codes.FailedPrecondition, "node %s is the manager answering this request; demote it from another manager", n.Id)
		}
		// Leave raft first: it is the step that can be refused, and a
		// node whose spec says worker must not still vote.
		if err := s.raft.RemoveManager(ctx, n.Id); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "demote %s: remove it from raft: %v", n.Id, err)
		}
	}
	var updated *api.Node
	wctx := ctx
	if demote {
		// The node has left raft already: record the demotion even if
		// the caller gives up now, or the node would be neither.
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
	}
	err = s.update(wctx, func(tx store.Tx) error {
		cur := tx.Node(n.Id)
		if cur == nil {
			return status.Errorf(codes.NotFound, "node %s: no such node", n.Id)
		}
		switch {
		case cur.Meta.GetVersion() == req.NodeVersion:
			cur.Spec = req.Spec
		case demote:
			// The node has left raft already; someone changed its spec
			// meanwhile: keep their change, record only the demotion.
			if cur.Spec == nil {
				cur.Spec = &api.NodeSpec{}
			}
			cur.Spec.DesiredRole = api.NodeRole_NODE_ROLE_WORKER
		default:
			return status.Errorf(codes.Aborted, "node_version: node %s changed (now version %d); read it again and retry",
				n.Id, cur.Meta.GetVersion())
		}
		updated = cur
		return tx.Update(cur)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	// Answer with the node as committed (its new version), not as staged.
	s.store.View(func(tx store.ReadTx) {
		if n := tx.Node(updated.Id); n != nil {
			updated = n
		}
	})
	s.log.Info("node updated", "node", n.Id, "role", req.Spec.DesiredRole.Name(),
		"availability", req.Spec.Availability.String())
	return &api.UpdateNodeResponse{Node: updated}, nil
}

// RemoveNode deletes a node; its certificate is refused from then on. A
// manager must be demoted first, and a node that is not down needs force.
func (s *Server) RemoveNode(ctx context.Context, req *api.RemoveNodeRequest) (*api.RemoveNodeResponse, error) {
	if req.NodeId == "" {
		return nil, status.Error(codes.InvalidArgument, "node_id: must name a node")
	}
	n, err := s.resolveNode(ctx, req.NodeId)
	if err != nil {
		return nil, err
	}
	if n.Id == s.localID {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is the manager answering this request; remove it from another manager", n.Id)
	}
	if n.Spec.GetDesiredRole() == api.NodeRole_NODE_ROLE_MANAGER || s.isManager(n.Id) {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is a cluster manager; demote it before removing it", n.Id)
	}
	if !req.Force && n.Status.GetState() == api.NodeState_NODE_STATE_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is not down and can't be removed; stop it first or use --force", n.Id)
	}
	err = s.update(ctx, func(tx store.Tx) error {
		cur := tx.Node(n.Id)
		if cur == nil {
			return nil
		}
		// Decide again on what the transaction read: the node may have
		// been promoted or come back since the checks above.
		if cur.Spec.GetDesiredRole() == api.NodeRole_NODE_ROLE_MANAGER {
			return status.Errorf(codes.FailedPrecondition, "node %s is a cluster manager; demote it before removing it", n.Id)
		}
		if !req.Force && cur.Status.GetState() == api.NodeState_NODE_STATE_READY {
			return status.Errorf(codes.FailedPrecondition, "node %s is not down and can't be removed; stop it first or use --force", n.Id)
		}
		return tx.Delete(cur)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.log.Info("node removed", "node", n.Id, "force", req.Force)
	return &api.RemoveNodeResponse{}, nil
}

func validateNodeSpec(spec *api.NodeSpec) error {
	if spec == nil {
		return status.Error(codes.InvalidArgument, "spec: missing")
	}
	if _, ok := api.NodeRole_name[int32(spec.DesiredRole)]; !ok {
		return status.Errorf(codes.InvalidArgument, "spec.desired_role: %d is not a role (worker or manager)", spec.DesiredRole)
	}
	if _, ok := api.NodeAvailability_name[int32(spec.Availability)]; !ok {
		return status.Errorf(codes.InvalidArgument, "spec.availability: %d is not an availability (active, pause or drain)", spec.Availability)
	}
	for k := range spec.GetAnnotations().GetLabels() {
		if k == "" {
			return status.Error(codes.InvalidArgument, "spec.annotations.labels: a label key is empty")
		}
	}
	return nil
}

// checkDemote refuses to demote the last manager, or one whose removal
// would leave fewer reachable managers than a quorum.
func (s *Server) checkDemote(n *api.Node) error {
	members := s.raft.Managers()
	if len(members) == 1 {
		return status.Errorf(codes.FailedPrecondition, "node %s is the last manager of the cluster and can't be demoted", n.Id)
	}
	reachable := 0
	for _, m := range members {
		if m.NodeID != n.Id && m.Reachable {
			reachable++
		}
	}
	if quorum := (len(members)-1)/2 + 1; reachable < quorum {
		return status.Errorf(codes.FailedPrecondition,
			"demoting %s would leave %d reachable managers of %d, fewer than a quorum (%d); bring managers back first",
			n.Id, reachable, len(members)-1, quorum)
	}
	return nil
}

func (s *Server) isManager(nodeID string) bool {
	for _, m := range s.raft.Managers() {
		if m.NodeID == nodeID {
			return true
		}
	}
	return false
}

// withManagerStatus fills in each manager's raft status.
func (s *Server) withManagerStatus(nodes ...*api.Node) {
	byID := make(map[string]Manager)
	for _, m := range s.raft.Managers() {
		byID[m.NodeID] = m
	}
	for _, n := range nodes {
		m, ok := byID[n.Id]
		if !ok {
			n.ManagerStatus = nil
			continue
		}
		r := api.Reachability_REACHABILITY_UNREACHABLE
		if m.Reachable {
			r = api.Reachability_REACHABILITY_REACHABLE
		}
		n.ManagerStatus = &api.ManagerStatus{RaftId: m.RaftID, Addr: m.Addr, Leader: m.Leader, Reachability: r}
	}
}

// resolveNode finds a node by exact ID, hostname or unique ID prefix.
func (s *Server) resolveNode(ctx context.Context, ref string) (*api.Node, error) {
	return resolve(ctx, s, "node_id", "node", ref, store.ReadTx.Nodes, func(n *api.Node) bool {
		return n.GetDescription().GetHostname() == ref
	})
}
