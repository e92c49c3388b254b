package controlapi

// This file owns the overlay queries netctl makes: the leader's endpoint views
// (ListOverlayEndpoints) and one network's overlay on one node, desired next to what the node's
// kernel has (InspectOverlay). Both are the leader's: its dispatcher holds the views and the
// nodes' sessions.

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/dispatcher"
)

// DataplaneSource is what the Control API needs of the leader's dispatcher: the endpoint views
// and the nodes' kernels. The manager supplies it with SetDataplaneSource.
type DataplaneSource interface {
	// Endpoints returns the views of networkIDs (none: all); false unless leading.
	Endpoints(networkIDs []string) ([]*api.Endpoint, bool)
	// Services returns the services' mesh views; false unless leading.
	Services() ([]*api.ServiceView, bool)
	// QueryDataplane asks a node's agent what q asks: its kernel's overlay state, its mesh, a DNS
	// lookup.
	QueryDataplane(ctx context.Context, nodeID string, q *api.DataplaneQuery) (*api.ReportDataplaneRequest, error)
}

// dataplaneQueryTimeout bounds the wait for a node's answer.
const dataplaneQueryTimeout = 10 * time.Second

type dataplaneSource struct {
	mu  sync.Mutex
	src DataplaneSource
}

// SetDataplaneSource gives the server the dispatcher whose views and sessions the overlay queries
// use. Until it is called they answer as a manager that is not the leader.
func (s *Server) SetDataplaneSource(src DataplaneSource) {
	s.dataplane.mu.Lock()
	defer s.dataplane.mu.Unlock()
	s.dataplane.src = src
}

// endpoints returns the leader's views of networkIDs, or the error telling the caller where to go.
func (s *Server) endpoints(networkIDs []string) ([]*api.Endpoint, error) {
	s.dataplane.mu.Lock()
	src := s.dataplane.src
	s.dataplane.mu.Unlock()
	if src != nil {
		if eps, ok := src.Endpoints(networkIDs); ok {
			return eps, nil
		}
	}
	return nil, s.notLeaderError("its dispatcher is not running yet")
}

// notLeaderError is the error of a leader-only query on this manager; notYet says what the
// leader lacks if this manager is it.
func (s *Server) notLeaderError(notYet string) error {
	switch leader := s.raft.LeaderNodeID(); leader {
	case "":
		return status.Error(codes.FailedPrecondition, "this manager is not the leader, and no leader is known; retry once one is elected")
	case s.localID:
		return status.Errorf(codes.Unavailable, "this manager is the leader but %s; retry", notYet)
	default:
		return status.Errorf(codes.FailedPrecondition, "this manager is not the leader; ask %s", leader)
	}
}

// ListOverlayEndpoints returns the leader's endpoint views of the named networks (none: all).
func (s *Server) ListOverlayEndpoints(ctx context.Context, req *api.ListOverlayEndpointsRequest) (*api.ListOverlayEndpointsResponse, error) {
	var ids []string
	for _, ref := range req.GetNetworks() {
		id, err := s.networkID(ctx, ref)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	eps, err := s.endpoints(ids)
	if err != nil {
		return nil, err
	}
	return &api.ListOverlayEndpointsResponse{Endpoints: eps}, nil
}

// InspectOverlay returns a network's desired overlay and the named node's (default: this
// manager's) kernel state of it.
func (s *Server) InspectOverlay(ctx context.Context, req *api.InspectOverlayRequest) (*api.InspectOverlayResponse, error) {
	if req.GetNetwork() == "" {
		return nil, status.Error(codes.InvalidArgument, "network: empty; name the network to inspect")
	}
	nodeRef := req.GetNode()
	if nodeRef == "" {
		nodeRef = s.localID // this manager's own node
	}
	nw, err := s.resolveNetwork(ctx, req.GetNetwork())
	if err != nil {
		return nil, err
	}
	node, err := s.resolveNode(ctx, nodeRef)
	if err != nil {
		return nil, err
	}
	eps, err := s.endpoints([]string{nw.GetId()})
	if err != nil {
		return nil, err
	}
	report, err := s.queryNode(ctx, node, &api.DataplaneQuery{NetworkIds: []string{nw.GetId()}})
	if err != nil {
		return nil, err
	}
	nw.Allocation = nil
	resp := &api.InspectOverlayResponse{Network: nw, Node: node, Endpoints: eps}
	for _, k := range report.GetNetworks() {
		if k.GetNetworkId() == nw.GetId() {
			resp.Kernel = k
		}
	}
	if resp.Kernel == nil {
		resp.Kernel = &api.OverlayKernelState{NetworkId: nw.GetId()} // no device there
	}
	return resp, nil
}

// queryNode asks node's agent what q asks, through the leader's session with it.
func (s *Server) queryNode(ctx context.Context, node *api.Node, q *api.DataplaneQuery) (*api.ReportDataplaneRequest, error) {
	s.dataplane.mu.Lock()
	src := s.dataplane.src
	s.dataplane.mu.Unlock()
	if src == nil {
		return nil, s.notLeaderError("its dispatcher is not running yet")
	}
	qctx, cancel := context.WithTimeout(ctx, dataplaneQueryTimeout)
	defer cancel()
	report, err := src.QueryDataplane(qctx, node.GetId(), q)
	switch {
	case errors.Is(err, dispatcher.ErrNodeNotConnected):
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is not connected to the leader (%s): its kernel cannot be read", nodeName(node), node.GetStatus().GetState())
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "read node %s's kernel: %v", nodeName(node), err)
	}
	return report, nil
}
