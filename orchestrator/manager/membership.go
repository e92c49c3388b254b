package manager

// This file adapts the raft node to what the Control API and the dispatcher
// need to know of membership, and the CA service's store backend.

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/controlapi"
	"github.com/shoal/shoal/orchestrator/raft"
	"github.com/shoal/shoal/orchestrator/store"
)

type membership struct {
	raft *raft.Node
}

func (mb *membership) Managers() []controlapi.Manager {
	var out []controlapi.Manager
	for _, ms := range mb.raft.Members() {
		out = append(out, controlapi.Manager{
			NodeID:    ms.Member.NodeId,
			RaftID:    ms.Member.RaftId,
			Addr:      ms.Member.Addr,
			Leader:    ms.Leader,
			Reachable: ms.Reachable,
		})
	}
	return out
}

func (mb *membership) LeaderNodeID() string {
	if l, ok := mb.raft.Leader(); ok {
		return l.NodeId
	}
	return ""
}

func (mb *membership) LeaderAddr() string {
	if l, ok := mb.raft.Leader(); ok {
		return l.Addr
	}
	return ""
}

func (mb *membership) ManagerAddrs() []string {
	var out []string
	for _, ms := range mb.raft.Members() {
		out = append(out, ms.Member.Addr)
	}
	return out
}

func (mb *membership) Term() uint64         { return mb.raft.Status().Term }
func (mb *membership) AppliedIndex() uint64 { return mb.raft.Status().Applied }

func (mb *membership) RemoveManager(ctx context.Context, nodeID string) error {
	for _, ms := range mb.raft.Members() {
		if ms.Member.NodeId == nodeID {
			return mb.raft.RemoveMember(ctx, ms.Member.RaftId)
		}
	}
	return fmt.Errorf("node %s is not a raft member", nodeID)
}

// caBackend gives the CA service the store.
type caBackend struct {
	store *store.MemoryStore
}

func (b *caBackend) Cluster(ctx context.Context) (*api.Cluster, error) {
	var c *api.Cluster
	if err := b.store.ViewLinearizable(ctx, func(tx store.ReadTx) {
		if cs := tx.Clusters(); len(cs) > 0 {
			c = cs[0]
		}
	}); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("the cluster is not initialised yet")
	}
	return c, nil
}

func (b *caBackend) RegisterNode(ctx context.Context, n *api.Node) error {
	return b.store.Update(ctx, func(tx store.Tx) error { return tx.Create(n) })
}

func (b *caBackend) Node(ctx context.Context, nodeID string) (*api.Node, error) {
	var n *api.Node
	if err := b.store.ViewLinearizable(ctx, func(tx store.ReadTx) { n = tx.Node(nodeID) }); err != nil {
		return nil, err
	}
	if n == nil {
		return nil, fmt.Errorf("node %s: %w", nodeID, ca.ErrNodeNotFound)
	}
	return n, nil
}

func (b *caBackend) UpdateNodeCertificate(ctx context.Context, nodeID string, cert *api.NodeCertificate) error {
	return b.store.Update(ctx, func(tx store.Tx) error {
		n := tx.Node(nodeID)
		if n == nil {
			return fmt.Errorf("node %s: %w", nodeID, ca.ErrNodeNotFound)
		}
		n.Certificate = cert
		n.Role = cert.Role
		return tx.Update(n)
	})
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
