// Package managertest runs a cluster of real managers inside one process, on
// loopback with mTLS and durable raft state, for tests and benchmarks that
// need to drive the store directly, stop managers and start them again.
// It builds managers the way shoald does: the first one initialises the
// cluster with ca.Bootstrap, the others join with the manager token.
package managertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/manager"
	"github.com/shoal/shoal/orchestrator/store"
)

// Options tune the cluster.
type Options struct {
	TickInterval     time.Duration // default 100ms
	ElectionTick     int           // default 10
	SnapshotInterval uint64        // default 10000
	Logger           *slog.Logger  // default: discard
}

// Cluster is a set of in-process managers.
type Cluster struct {
	dir  string
	opts Options

	mu      sync.Mutex
	members []*Member
}

// Member is one manager of the cluster.
type Member struct {
	Index int
	dir   string
	addr  string
	sc    *ca.SecurityConfig

	mu      sync.Mutex
	mgr     *manager.Manager
	cancel  context.CancelFunc
	done    chan error
	running bool
}

// Start starts n managers with state under dir and waits until they all
// serve.
func Start(ctx context.Context, dir string, n int, opts Options) (*Cluster, error) {
	if opts.TickInterval == 0 {
		opts.TickInterval = 100 * time.Millisecond
	}
	if opts.ElectionTick == 0 {
		opts.ElectionTick = 10
	}
	if opts.SnapshotInterval == 0 {
		opts.SnapshotInterval = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{dir: dir, opts: opts}
	first := &Member{Index: 0, dir: filepath.Join(dir, "m0")}
	clusterID, err := ca.NewID()
	if err != nil {
		return nil, err
	}
	nodeID, err := ca.NewID()
	if err != nil {
		return nil, err
	}
	rootCA, sc, err := ca.Bootstrap(clusterID, nodeID, 24*time.Hour, filepath.Join(first.dir, "certificates"))
	if err != nil {
		return nil, err
	}
	first.sc = sc
	spec := manager.DefaultClusterSpec("test")
	if err := c.run(ctx, first, "127.0.0.1:0", &manager.Bootstrap{ClusterID: clusterID, RootCA: rootCA, Spec: spec}, ""); err != nil {
		return nil, err
	}
	c.members = append(c.members, first)
	for i := 1; i < n; i++ {
		m := &Member{Index: i, dir: filepath.Join(dir, fmt.Sprintf("m%d", i))}
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		m.sc, err = ca.RequestCertificate(jctx, first.addr, rootCA.JoinTokens.Manager,
			&api.NodeDescription{Hostname: fmt.Sprintf("m%d", i)}, "", filepath.Join(m.dir, "certificates"))
		cancel()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("manager %d joins: %w", i, err)
		}
		if err := c.run(ctx, m, "127.0.0.1:0", nil, first.addr); err != nil {
			c.Close()
			return nil, err
		}
		c.members = append(c.members, m)
	}
	return c, nil
}

// run starts a member's manager and waits until it is ready.
func (c *Cluster) run(ctx context.Context, m *Member, listen string, boot *manager.Bootstrap, joinAddr string) error {
	mgr, err := manager.New(manager.Config{
		StateDir:         m.dir,
		ListenRemoteAPI:  listen,
		ControlSocket:    filepath.Join(m.dir, "control.sock"),
		Security:         m.sc,
		Description:      &api.NodeDescription{Hostname: fmt.Sprintf("m%d", m.Index)},
		Bootstrap:        boot,
		JoinAddr:         joinAddr,
		TickInterval:     c.opts.TickInterval,
		ElectionTick:     c.opts.ElectionTick,
		HeartbeatTick:    1,
		SnapshotInterval: c.opts.SnapshotInterval,
		Logger:           c.opts.Logger.With("manager", m.Index),
	})
	if err != nil {
		return fmt.Errorf("manager %d: %w", m.Index, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Run(rctx) }()
	m.mu.Lock()
	m.mgr, m.cancel, m.done, m.running, m.addr = mgr, cancel, done, true, mgr.Addr()
	m.mu.Unlock()
	select {
	case <-mgr.Ready():
		return nil
	case err := <-done:
		cancel()
		return fmt.Errorf("manager %d stopped while starting: %w", m.Index, err)
	case <-ctx.Done():
		cancel()
		return ctx.Err()
	}
}

// Members returns the members, running or not.
func (c *Cluster) Members() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Member(nil), c.members...)
}

// Manager returns the member's running manager, nil when it is stopped.
func (m *Member) Manager() *manager.Manager {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return nil
	}
	return m.mgr
}

// Addr is the member's remote API address.
func (m *Member) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// ControlSocket is the unix socket of the member's Control API.
func (m *Member) ControlSocket() string { return filepath.Join(m.dir, "control.sock") }

// Store returns the member's store, nil when it is stopped.
func (m *Member) Store() *store.MemoryStore {
	if mgr := m.Manager(); mgr != nil {
		return mgr.Store()
	}
	return nil
}

// Stop stops the member's manager, as a crash would: no leadership
// transfer, no goodbye.
func (m *Member) Stop() {
	m.mu.Lock()
	if !m.running {
		m.mu.Unlock()
		return
	}
	m.running = false
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	cancel()
	<-done
}

// Restart starts a stopped member again from its state folder, on the same
// address.
func (c *Cluster) Restart(ctx context.Context, m *Member) error {
	if m.Manager() != nil {
		return errors.New("member is running")
	}
	return c.run(ctx, m, m.addr, nil, "")
}

// Leader returns the running member that leads, or nil.
func (c *Cluster) Leader() *Member {
	for _, m := range c.Members() {
		if mgr := m.Manager(); mgr != nil && mgr.Raft().IsLeader() {
			return m
		}
	}
	return nil
}

// WaitLeader waits until a running member leads.
func (c *Cluster) WaitLeader(ctx context.Context) (*Member, error) {
	for {
		if l := c.Leader(); l != nil {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops every member.
func (c *Cluster) Close() {
	for _, m := range c.Members() {
		m.Stop()
	}
}
