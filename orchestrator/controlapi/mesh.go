package controlapi

// This file owns the mesh query netctl makes (InspectMesh): what the cluster wants of a node's
// service mesh — the leader's service views, endpoints and networks, from which netctl derives
// the node's desired load balancer, VIP and DNS state with the agent's own rules — next to what
// the node holds, read from it just now through its session. Like the overlay queries it is the
// leader's.

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// InspectMesh returns the leader's views and the named node's (default: this manager's) mesh as
// programmed, with a DNS lookup and its overlay when asked.
func (s *Server) InspectMesh(ctx context.Context, req *api.InspectMeshRequest) (*api.InspectMeshResponse, error) {
	nodeRef := req.GetNode()
	if nodeRef == "" {
		nodeRef = s.localID
	}
	node, err := s.resolveNode(ctx, nodeRef)
	if err != nil {
		return nil, err
	}
	q := &api.DataplaneQuery{Mesh: true, DnsName: req.GetDnsName()}
	if req.GetDnsName() != "" {
		if req.GetDnsNetwork() == "" {
			return nil, status.Error(codes.InvalidArgument, "dns_network: empty; name the network whose containers would ask")
		}
		id, err := s.networkID(ctx, req.GetDnsNetwork())
		if err != nil {
			return nil, err
		}
		q.DnsNetwork = id
	}
	eps, err := s.endpoints(nil)
	if err != nil {
		return nil, err
	}
	s.dataplane.mu.Lock()
	src := s.dataplane.src
	s.dataplane.mu.Unlock()
	services, ok := src.Services()
	if !ok {
		return nil, s.notLeaderError("its dispatcher is not running yet")
	}
	report, err := s.queryNode(ctx, node, q)
	if err != nil {
		return nil, err
	}
	resp := &api.InspectMeshResponse{Node: node, Services: services, Endpoints: eps, Kernel: report.GetMesh(), DnsAnswer: report.GetDnsAnswer()}
	if req.GetOverlay() {
		resp.Overlay = report.GetNetworks()
	}
	s.store.View(func(tx store.ReadTx) {
		for _, n := range tx.Networks() {
			n.Allocation = nil
			resp.Networks = append(resp.Networks, n)
		}
	})
	return resp, nil
}
