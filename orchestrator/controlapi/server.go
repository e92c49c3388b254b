// Package controlapi is the Control gRPC service shoalctl talks to: it
// validates requests, reads the store linearizably and writes it through
// transactions. It never changes state on a request it refuses.
//
// It imports api, orchestrator/store, orchestrator/ca,
// orchestrator/scheduler (whose placement language it validates specs
// with) and ipam (whose pools it validates network subnets and pinned
// addresses with); raft is reached through the Membership interface the
// manager supplies, the allocator through AllocatorSource.
package controlapi

// This file owns the server, the cluster-wide RPCs (cluster info, join
// tokens) and what every RPC shares: finding the object a reference names
// and turning errors into statuses. nodes.go owns the node RPCs,
// services.go the service RPCs (servicespec.go, pinspec.go and servicecheck.go their
// validation), networks.go the network RPCs (networkspec.go their
// validation), tasks.go the task RPCs and bindings.go the IP binding and
// allocator RPCs.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/store"
)

// Manager is one raft member as this manager sees it.
type Manager struct {
	NodeID    string
	RaftID    uint64
	Addr      string
	Leader    bool
	Reachable bool
}

// Membership is what the Control API needs of raft.
type Membership interface {
	// Managers lists the raft members.
	Managers() []Manager
	// LeaderNodeID is the node ID of the current leader, "" if none.
	LeaderNodeID() string
	// Term and AppliedIndex describe this manager's raft state.
	Term() uint64
	AppliedIndex() uint64
	// RemoveManager removes a node from the raft group, refusing when
	// that would cost the group its quorum.
	RemoveManager(ctx context.Context, nodeID string) error
}

// Server implements api.ControlServer.
type Server struct {
	api.UnimplementedControlServer
	store   *store.MemoryStore
	raft    Membership
	localID string
	log     *slog.Logger

	allocMu sync.Mutex
	alloc   AllocatorSource // nil until SetAllocatorSource; see bindings.go

	dataplane dataplaneSource // see overlay.go
}

// NewServer returns the Control service of the manager whose node ID is
// localID.
func NewServer(s *store.MemoryStore, m Membership, localID string, log *slog.Logger) *Server {
	return &Server{store: s, raft: m, localID: localID, log: log}
}

// cluster reads the cluster object linearizably.
func (s *Server) cluster(ctx context.Context) (*api.Cluster, error) {
	var c *api.Cluster
	err := s.store.ViewLinearizable(ctx, func(tx store.ReadTx) {
		if cs := tx.Clusters(); len(cs) > 0 {
			c = cs[0]
		}
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if c == nil {
		return nil, status.Error(codes.Unavailable, "the cluster is not initialised yet")
	}
	return c, nil
}

// GetCluster returns the cluster object without the CA key.
func (s *Server) GetCluster(ctx context.Context, _ *api.GetClusterRequest) (*api.GetClusterResponse, error) {
	c, err := s.cluster(ctx)
	if err != nil {
		return nil, err
	}
	if c.RootCa != nil {
		c.RootCa.CaKeyPem = nil
	}
	return &api.GetClusterResponse{
		Cluster:          c,
		LeaderId:         s.raft.LeaderNodeID(),
		RaftTerm:         s.raft.Term(),
		RaftAppliedIndex: s.raft.AppliedIndex(),
		ManagerNodeId:    s.localID,
	}, nil
}

// RotateJoinToken replaces the worker or manager join token; the old one is
// refused from the moment the change commits.
func (s *Server) RotateJoinToken(ctx context.Context, req *api.RotateJoinTokenRequest) (*api.RotateJoinTokenResponse, error) {
	if _, ok := api.NodeRole_name[int32(req.Role)]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "role: %d is not a node role (worker or manager)", req.Role)
	}
	var tokens *api.JoinTokens
	err := s.update(ctx, func(tx store.Tx) error {
		cs := tx.Clusters()
		if len(cs) == 0 {
			return status.Error(codes.Unavailable, "the cluster is not initialised yet")
		}
		c := cs[0]
		if c.RootCa == nil {
			return status.Error(codes.Internal, "the cluster object has no root CA")
		}
		root, err := ca.ParseRootCA(c.RootCa.GetCaCertPem(), nil)
		if err != nil {
			return fmt.Errorf("read the cluster's root CA: %w", err)
		}
		token, err := ca.GenerateJoinToken(root)
		if err != nil {
			return err
		}
		if c.RootCa.JoinTokens == nil {
			c.RootCa.JoinTokens = &api.JoinTokens{}
		}
		if req.Role == api.NodeRole_NODE_ROLE_MANAGER {
			c.RootCa.JoinTokens.Manager = token
		} else {
			c.RootCa.JoinTokens.Worker = token
		}
		tokens = c.RootCa.JoinTokens
		return tx.Update(c)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.log.Info("join token rotated", "role", req.Role.Name())
	return &api.RotateJoinTokenResponse{JoinTokens: tokens}, nil
}

// resolve finds the object of kind that ref, given in the request's field,
// names among all of that kind read linearizably; see pick.
func resolve[T interface{ GetId() string }](ctx context.Context, s *Server, field, kind, ref string,
	all func(store.ReadTx) []T, named func(T) bool) (T, error) {
	var zero T
	if ref == "" {
		return zero, invalid(field, "must name a %s", kind)
	}
	var objs []T
	if err := s.store.ViewLinearizable(ctx, func(tx store.ReadTx) { objs = all(tx) }); err != nil {
		return zero, toStatus(err)
	}
	return pick(kind, ref, objs, named)
}

// pick returns the object of kind that ref names among objs: the one whose
// ID is ref; else the only one named ref (named is nil for a kind without
// names); else the only one whose ID starts with ref. It answers NotFound
// when none matches, InvalidArgument listing the IDs when ref is
// ambiguous.
func pick[T interface{ GetId() string }](kind, ref string, objs []T, named func(T) bool) (T, error) {
	var zero T
	var byName, byPrefix []T
	for _, o := range objs {
		if o.GetId() == ref {
			return o, nil
		}
		if named != nil && named(o) {
			byName = append(byName, o)
		}
		if strings.HasPrefix(o.GetId(), ref) {
			byPrefix = append(byPrefix, o)
		}
	}
	for _, matches := range [][]T{byName, byPrefix} {
		switch len(matches) {
		case 0:
			continue
		case 1:
			return matches[0], nil
		default:
			ids := make([]string, len(matches))
			for i, m := range matches {
				ids[i] = m.GetId()
			}
			sort.Strings(ids)
			return zero, status.Errorf(codes.InvalidArgument, "%s %q is ambiguous: it matches %s; use the full ID", kind, ref, strings.Join(ids, ", "))
		}
	}
	return zero, status.Errorf(codes.NotFound, "%s %s: no such %s", kind, ref, kind)
}

// update runs fn in a store transaction for a client's write. The manager answering may lag
// behind the leader: an object the client has just made through another manager may not be
// applied here yet, and fn would refuse the request for its absence. So a request fn refuses is
// run once more after a read barrier (this manager then holds everything committed before it),
// and a client sees its own writes through any manager. Only a refusal by fn is retried, not a
// failed commit (which may have committed after all). fn may run more than once, as
// store.Update may run it already; only the refused path pays for the barrier.
func (s *Server) update(ctx context.Context, fn func(store.Tx) error) error {
	var refused error
	err := s.store.Update(ctx, func(tx store.Tx) error {
		refused = fn(tx)
		return refused
	})
	if err == nil || refused == nil || ctx.Err() != nil {
		return err
	}
	if s.store.ViewLinearizable(ctx, func(store.ReadTx) {}) != nil {
		return err
	}
	return s.store.Update(ctx, fn)
}

// toStatus turns store and raft errors into gRPC statuses; errors that are
// statuses already pass through.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrExist):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, store.ErrVersionConflict):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

// resolveFilter resolves a list filter's references (names, IDs, ID prefixes) with resolve,
// which returns the ID an existing object's reference names, into the set of IDs; field names
// the filter in errors ("service_ids") and what what a reference must name ("a service").
func resolveFilter(ctx context.Context, field, what string, refs []string, resolve func(context.Context, string) (string, error)) (map[string]bool, error) {
	ids := make(map[string]bool, len(refs))
	for i, ref := range refs {
		if ref == "" {
			return nil, invalid(fmt.Sprintf("%s[%d]", field, i), "empty: must name %s", what)
		}
		id, err := resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, nil
}

// serviceID, nodeID and networkID resolve a reference to an ID, for resolveFilter.
func (s *Server) serviceID(ctx context.Context, ref string) (string, error) {
	svc, err := s.resolveService(ctx, ref)
	return svc.GetId(), err
}

func (s *Server) nodeID(ctx context.Context, ref string) (string, error) {
	n, err := s.resolveNode(ctx, ref)
	return n.GetId(), err
}

func (s *Server) networkID(ctx context.Context, ref string) (string, error) {
	nw, err := s.resolveNetwork(ctx, ref)
	return nw.GetId(), err
}
