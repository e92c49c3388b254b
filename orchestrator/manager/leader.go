package manager

// This file owns what runs only on the leader: the list of leader-only
// components and the one loop that starts them when this manager gains
// leadership and stops them all when it loses it.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/allocator"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/raft"
	"github.com/shoal/shoal/orchestrator/reconcile/global"
	"github.com/shoal/shoal/orchestrator/reconcile/replicated"
	"github.com/shoal/shoal/orchestrator/reconcile/restart"
	"github.com/shoal/shoal/orchestrator/reconcile/taskreaper"
	"github.com/shoal/shoal/orchestrator/reconcile/update"
	"github.com/shoal/shoal/orchestrator/scheduler"
	"github.com/shoal/shoal/orchestrator/store"
)

// leaderComponent is a piece of the manager that runs only on the leader.
type leaderComponent struct {
	name string
	run  func(ctx context.Context) error
}

// leaderComponents is the single list of leader-only components. It is
// built afresh each time this manager gains leadership: every component
// reads what it needs from the store when it starts, so nothing of an
// earlier term carries over.
func (m *Manager) leaderComponents() []leaderComponent {
	logFor := func(name string) *slog.Logger { return m.log.With("component", name) }
	restarts := restart.NewSupervisor(m.store, logFor("restart"))
	alloc := allocator.New(m.store, logFor("allocator"))
	updates := update.NewSupervisor(m.store, logFor("update"))
	return []leaderComponent{
		{"cluster-bootstrap", m.ensureCluster},
		{"dispatcher", m.dispatch.Run},
		{"allocator", func(ctx context.Context) error {
			m.allocator.Store(alloc)
			defer m.allocator.CompareAndSwap(alloc, nil)
			return alloc.Run(ctx)
		}},
		{"scheduler", scheduler.New(m.store, logFor("scheduler")).Run},
		{"restart", restarts.Run},
		{"replicated", replicated.New(m.store, restarts, updates, logFor("replicated")).Run},
		{"global", global.New(m.store, restarts, updates, logFor("global")).Run},
		{"taskreaper", taskreaper.New(m.store, logFor("taskreaper")).Run},
		// Rolling updates run in goroutines of their own under the
		// reconcilers' context; this entry only waits for them to stop
		// when leadership ends.
		{"update", func(ctx context.Context) error {
			<-ctx.Done()
			updates.Wait()
			return nil
		}},
	}
}

// runLeaderComponents follows leadership until ctx ends.
func (m *Manager) runLeaderComponents(ctx context.Context) {
	changes, cancelSub := m.raft.LeadershipChanges()
	defer cancelSub()
	var (
		stopRunning context.CancelFunc
		running     sync.WaitGroup
	)
	stop := func() {
		if stopRunning != nil {
			stopRunning()
			running.Wait()
			stopRunning = nil
		}
	}
	defer stop()
	start := func() {
		if stopRunning != nil {
			return
		}
		st := m.raft.Status()
		if !st.IsLeader {
			return // lost already: the change that says so is on its way
		}
		// Everything the components propose is fenced to this term (see
		// raft.WithLeaderTerm).
		var lctx context.Context
		lctx, stopRunning = context.WithCancel(raft.WithLeaderTerm(ctx, st.Term))
		for _, c := range m.leaderComponents() {
			running.Add(1)
			go func() {
				defer running.Done()
				m.runLeaderComponent(lctx, c)
			}()
		}
		m.log.Info("became leader; leader components started", "node", m.nodeID, "term", st.Term)
	}
	if m.raft.IsLeader() {
		start()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.raft.Done():
			return
		case leader, ok := <-changes:
			if !ok {
				return
			}
			if leader {
				start()
			} else if stopRunning != nil {
				stop()
				m.log.Info("lost leadership; leader components stopped", "node", m.nodeID)
			}
		}
	}
}

// runLeaderComponent runs c until ctx ends, starting it again with backoff
// when it fails: a leader without its dispatcher serves no agent.
func (m *Manager) runLeaderComponent(ctx context.Context, c leaderComponent) {
	backoff := 100 * time.Millisecond
	for {
		err := c.run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			return // done (a one-shot component)
		}
		m.log.Error("leader component failed; restarting it", "component", c.name, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// ensureCluster writes the cluster object and this node's record when the
// manager initialised a new cluster and they are not in the store yet.
func (m *Manager) ensureCluster(ctx context.Context) error {
	b := m.cfg.Bootstrap
	if b == nil {
		return nil
	}
	sc := m.cfg.Security
	return m.store.Update(ctx, func(tx store.Tx) error {
		if len(tx.Clusters()) == 0 {
			if err := tx.Create(&api.Cluster{
				Id:     b.ClusterID,
				Spec:   b.Spec,
				RootCa: b.RootCA,
			}); err != nil {
				return err
			}
		}
		if tx.Node(m.nodeID) == nil {
			return tx.Create(&api.Node{
				Id:          m.nodeID,
				Spec:        &api.NodeSpec{DesiredRole: api.NodeRole_NODE_ROLE_MANAGER},
				Description: m.cfg.Description,
				Status:      &api.NodeStatus{State: api.NodeState_NODE_STATE_UNKNOWN, Addr: hostOf(m.cfg.AdvertiseAddr)},
				Role:        api.NodeRole_NODE_ROLE_MANAGER,
				Certificate: &api.NodeCertificate{CertificatePem: sc.CertificatePEM(), Role: api.NodeRole_NODE_ROLE_MANAGER, NotAfter: timestamp(sc.NotAfter())},
			})
		}
		return nil
	})
}

// DefaultClusterSpec is a new cluster's spec before flags change it.
func DefaultClusterSpec(name string) *api.ClusterSpec {
	return &api.ClusterSpec{
		Annotations: &api.Annotations{Name: name},
		CaConfig:    &api.CAConfig{NodeCertExpiry: durationpb.New(ca.DefaultNodeCertExpiry)},
	}
}
