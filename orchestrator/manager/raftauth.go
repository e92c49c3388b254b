package manager

// This file owns the check that binds a raft membership request to the
// certificate that sent it. The authorizer lets only managers reach the Raft
// service; this check adds that a manager may join or leave only as itself,
// and that only a current member may pass on (forward) another's request.

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/raft"
)

// raftMembershipInterceptor checks Raft.Join and Raft.Leave callers.
func (m *Manager) raftMembershipInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		var subject string // the node the request concerns
		switch r := req.(type) {
		case *api.JoinRaftRequest:
			subject = r.GetNodeId()
		case *api.LeaveRaftRequest:
			subject = m.memberNodeID(r.GetRaftId())
		default:
			return handler(ctx, req)
		}
		id, ok := ca.IdentityFromContext(ctx)
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "raft membership requests need a node certificate")
		}
		if raft.IsForwarded(ctx) {
			if m.memberRaftID(id.NodeID) == 0 {
				return nil, status.Errorf(codes.PermissionDenied, "node %s is not a raft member and cannot forward membership requests", id.NodeID)
			}
			return handler(ctx, req)
		}
		if subject != "" && subject != id.NodeID {
			return nil, status.Errorf(codes.PermissionDenied, "node %s may change only its own raft membership, not node %s's", id.NodeID, subject)
		}
		return handler(ctx, req)
	}
}

func (m *Manager) memberNodeID(raftID uint64) string {
	for _, ms := range m.raft.Members() {
		if ms.Member.GetRaftId() == raftID {
			return ms.Member.GetNodeId()
		}
	}
	return ""
}

func (m *Manager) memberRaftID(nodeID string) uint64 {
	for _, ms := range m.raft.Members() {
		if ms.Member.GetNodeId() == nodeID {
			return ms.Member.GetRaftId()
		}
	}
	return 0
}
