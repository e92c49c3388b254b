package controlapi

// This file owns the IP binding RPCs: listing bindings (netctl ip ls),
// asking for the release of a slot's or a node's bindings (netctl ip
// release) and showing the leader's allocator state. Bindings are the
// allocator's: the only change made to them here is release_requested,
// which the allocator acts on once no task can still use the address. How
// a service spec's pins are checked against bindings is servicecheck.go's
// (checkPins); how bindings keep a network from being removed,
// networks.go's.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// AllocatorSource is what the Control API needs of the allocator: its
// state, for GetAllocatorState. ok is false when this manager's allocator
// is not running (the manager is not the leader, or has just become it).
// The manager supplies one with SetAllocatorSource.
type AllocatorSource interface {
	AllocatorState() (state *api.GetAllocatorStateResponse, ok bool)
}

// SetAllocatorSource gives the server the allocator whose state
// GetAllocatorState answers with. Until it is called, GetAllocatorState
// answers as on a manager that is not the leader.
func (s *Server) SetAllocatorSource(src AllocatorSource) {
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	s.alloc = src
}

func (s *Server) allocatorSource() AllocatorSource {
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	return s.alloc
}

// ListBindings returns the bindings every given filter matches, sorted by
// service name, network name, kind (slot, node, VIP), slot and node.
// Services and networks are named by ID, name or unique ID prefix.
func (s *Server) ListBindings(ctx context.Context, req *api.ListBindingsRequest) (*api.ListBindingsResponse, error) {
	serviceIDs, err := resolveFilter(ctx, "service_ids", "a service", req.ServiceIds, s.serviceID)
	if err != nil {
		return nil, err
	}
	networkIDs, err := resolveFilter(ctx, "network_ids", "a network", req.NetworkIds, s.networkID)
	if err != nil {
		return nil, err
	}
	var (
		bindings []*api.IPBinding
		networks []*api.Network
	)
	err = s.store.ViewLinearizable(ctx, func(tx store.ReadTx) {
		networks = tx.Networks()
		if len(serviceIDs) == 0 {
			bindings = tx.Bindings()
			return
		}
		for id := range serviceIDs {
			bindings = append(bindings, tx.BindingsByService(id)...)
		}
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if len(networkIDs) > 0 {
		bindings = slices.DeleteFunc(bindings, func(b *api.IPBinding) bool { return !networkIDs[b.NetworkId] })
	}
	names := make(map[string]string, len(networks))
	for _, nw := range networks {
		names[nw.Id] = networkName(nw)
	}
	slices.SortFunc(bindings, func(a, b *api.IPBinding) int { return compareBindings(names, a, b) })
	return &api.ListBindingsResponse{Bindings: bindings}, nil
}

// compareBindings orders bindings as listings show them: by service name,
// network name (networkNames maps IDs to names), kind, slot and node; IDs
// break ties, so the order is the same on every call.
func compareBindings(networkNames map[string]string, a, b *api.IPBinding) int {
	return cmp.Or(
		strings.Compare(a.ServiceName, b.ServiceName),
		strings.Compare(a.ServiceId, b.ServiceId),
		strings.Compare(networkNames[a.NetworkId], networkNames[b.NetworkId]),
		strings.Compare(a.NetworkId, b.NetworkId),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Slot, b.Slot),
		strings.Compare(a.NodeId, b.NodeId),
		strings.Compare(a.Id, b.Id),
	)
}

// ReleaseBinding asks the allocator to free a slot's bindings (a node's,
// for a global service): on one network, or on every network when none is
// named. It refuses while the slot is in use (a replicated service's slot
// up to its replicas, a global service's node while a task of the service
// is meant to run there), so only a binding kept after a scale-down (or a
// drain off the node) can be released. The bindings stay until the
// allocator frees them, once no task can still use their address; the
// answer carries them as marked.
func (s *Server) ReleaseBinding(ctx context.Context, req *api.ReleaseBindingRequest) (*api.ReleaseBindingResponse, error) {
	svc, err := s.resolveService(ctx, req.GetServiceId())
	if err != nil {
		return nil, err
	}
	key, err := s.releaseKey(ctx, svc, req)
	if err != nil {
		return nil, err
	}
	var ids []string
	err = s.update(ctx, func(tx store.Tx) error {
		cur := tx.Service(svc.Id)
		if cur == nil {
			return status.Errorf(codes.NotFound, "service %s: no such service", serviceName(svc))
		}
		if err := key.checkUnused(tx, cur); err != nil {
			return err
		}
		ids = ids[:0]
		var found []*api.IPBinding
		for _, b := range tx.BindingsByService(svc.Id) {
			if key.matches(b) {
				found = append(found, b)
			}
		}
		if len(found) == 0 {
			return status.Errorf(codes.NotFound, "service %s has no binding for %s", serviceName(cur), key)
		}
		for _, b := range found {
			ids = append(ids, b.Id)
			if b.ReleaseRequested {
				continue // asked already: nothing to write
			}
			b.ReleaseRequested = true
			if err := tx.Update(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &api.ReleaseBindingResponse{}
	names := make(map[string]string)
	s.store.View(func(tx store.ReadTx) {
		for _, id := range ids {
			// The allocator may have freed one already.
			if b := tx.Binding(id); b != nil {
				resp.Bindings = append(resp.Bindings, b)
				if nw := tx.Network(b.NetworkId); nw != nil {
					names[nw.Id] = networkName(nw)
				}
			}
		}
	})
	slices.SortFunc(resp.Bindings, func(a, b *api.IPBinding) int { return compareBindings(names, a, b) })
	s.log.Info("binding release requested", "service", svc.Id, "name", serviceName(svc), "key", key.String(), "bindings", len(ids))
	return resp, nil
}

// releaseKey names the bindings a ReleaseBinding request asks for.
type releaseKey struct {
	global  bool
	slot    uint64
	node    *api.Node
	network *api.Network // nil: every network
}

// releaseKey checks that req names its bindings as svc's mode does (a
// slot for a replicated service, a node for a global one) and resolves
// the node and the network it names.
func (s *Server) releaseKey(ctx context.Context, svc *api.Service, req *api.ReleaseBindingRequest) (releaseKey, error) {
	key := releaseKey{global: svc.GetSpec().GetGlobal() != nil, slot: req.Slot}
	name := serviceName(svc)
	switch {
	case key.global && req.Slot != 0:
		return key, invalid("slot", "service %s is global: its bindings are per node; give node_id, not a slot", name)
	case key.global && req.NodeId == "":
		return key, invalid("node_id", "required: service %s is global, its bindings are per node", name)
	case !key.global && req.NodeId != "":
		return key, invalid("node_id", "service %s is replicated: its bindings are per slot; give the slot, not a node", name)
	case !key.global && req.Slot == 0:
		return key, invalid("slot", "required: service %s is replicated, its bindings are per slot, numbered from 1", name)
	}
	if key.global {
		n, err := s.resolveNode(ctx, req.NodeId)
		if status.Code(err) == codes.NotFound {
			n, err = s.removedNode(ctx, svc, req.NodeId)
		}
		if err != nil {
			return key, err
		}
		key.node = n
	}
	if req.NetworkId != "" {
		nw, err := s.resolveNetwork(ctx, req.NetworkId)
		if err != nil {
			return key, err
		}
		key.network = nw
	}
	return key, nil
}

// removedNode finds, among the nodes svc's node bindings name, the one
// ref names by ID or unique ID prefix: a node removed from the cluster may
// leave bindings behind until the allocator frees them, and they can still
// be released. It answers NotFound as resolveNode does when none matches.
func (s *Server) removedNode(ctx context.Context, svc *api.Service, ref string) (*api.Node, error) {
	var nodes []*api.Node
	err := s.store.ViewLinearizable(ctx, func(tx store.ReadTx) {
		seen := make(map[string]bool)
		for _, b := range tx.BindingsByService(svc.Id) {
			if b.Kind == api.IPBinding_KIND_NODE && !seen[b.NodeId] && tx.Node(b.NodeId) == nil {
				seen[b.NodeId] = true
				nodes = append(nodes, &api.Node{Id: b.NodeId})
			}
		}
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return pick("node", ref, nodes, nil)
}

// String names the key in messages: "slot 3 on network front", "node
// host-a (1a2b3c) on any network".
func (k releaseKey) String() string {
	what := fmt.Sprintf("slot %d", k.slot)
	if k.global {
		what = "node " + nodeName(k.node)
	}
	if k.network == nil {
		return what + " on any network"
	}
	return what + " on network " + networkName(k.network)
}

func (k releaseKey) matches(b *api.IPBinding) bool {
	if k.network != nil && b.NetworkId != k.network.Id {
		return false
	}
	if k.global {
		return b.Kind == api.IPBinding_KIND_NODE && b.NodeId == k.node.Id
	}
	return b.Kind == api.IPBinding_KIND_SLOT && b.Slot == k.slot
}

// checkUnused refuses the release of a slot or node svc still uses, in
// the state tx reads.
func (k releaseKey) checkUnused(tx store.ReadTx, svc *api.Service) error {
	name := serviceName(svc)
	if !k.global {
		if replicas := svc.GetSpec().GetReplicated().GetReplicas(); k.slot <= replicas {
			return status.Errorf(codes.FailedPrecondition, "slot %d of %s is in use (replicas %d); scale down below it first", k.slot, name, replicas)
		}
		return nil
	}
	for _, t := range tx.TasksByService(svc.Id) {
		if t.NodeId == k.node.Id && t.DesiredState <= api.TaskState_TASK_STATE_RUNNING {
			return status.Errorf(codes.FailedPrecondition, "node %s of %s is in use: its task %s is meant to run there; drain the node or constrain %s off it first",
				nodeName(k.node), name, t.Id, name)
		}
	}
	return nil
}

// nodeName is a node as messages name it: "host-a (1a2b3c)", or its ID
// when it has no hostname.
func nodeName(n *api.Node) string {
	if h := n.GetDescription().GetHostname(); h != "" {
		return fmt.Sprintf("%s (%s)", h, n.Id)
	}
	return n.Id
}

// GetAllocatorState returns the state of this manager's allocator. Only
// the leader runs one; another manager answers FailedPrecondition naming
// the leader.
func (s *Server) GetAllocatorState(_ context.Context, _ *api.GetAllocatorStateRequest) (*api.GetAllocatorStateResponse, error) {
	if src := s.allocatorSource(); src != nil {
		if st, ok := src.AllocatorState(); ok && st != nil {
			if st.LeaderNodeId == "" {
				st = proto.Clone(st).(*api.GetAllocatorStateResponse)
				st.LeaderNodeId = s.localID
			}
			return st, nil
		}
	}
	return nil, s.notLeaderError("its allocator is not running yet (it rebuilds after a leader change)")
}
