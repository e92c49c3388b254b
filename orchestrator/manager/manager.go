package manager

// This file owns the Manager's lifecycle: listeners, gRPC servers, raft start
// (bootstrap, join or restart) and shutdown.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/allocator"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/controlapi"
	"github.com/shoal/shoal/orchestrator/dispatcher"
	"github.com/shoal/shoal/orchestrator/raft"
	"github.com/shoal/shoal/orchestrator/store"
)

// maxMessageSize bounds gRPC messages between nodes; raft snapshots travel in
// one message.
const maxMessageSize = 256 << 20

// joinTimeout bounds joining raft: a join lost in a leader change must fail
// and be retried, not wait for ever.
const joinTimeout = time.Minute

// Bootstrap is what a manager initialising a new cluster writes first.
type Bootstrap struct {
	ClusterID string
	RootCA    *api.RootCA // certificate, key and join tokens, from ca.Bootstrap
	Spec      *api.ClusterSpec
}

// Config configures a manager.
type Config struct {
	StateDir        string // raft state lives in StateDir/raft
	ListenRemoteAPI string // host:port for the mTLS API
	AdvertiseAddr   string // host:port other nodes dial; ListenRemoteAPI when empty
	ControlSocket   string // unix socket path for the local Control API
	Security        *ca.SecurityConfig
	Description     *api.NodeDescription

	Bootstrap *Bootstrap // set when initialising a new cluster
	JoinAddr  string     // set when joining as a new manager

	TickInterval               time.Duration
	ElectionTick               int
	HeartbeatTick              int
	SnapshotInterval           uint64
	LogEntriesForSlowFollowers uint64

	Logger *slog.Logger
}

// Manager is a running manager node.
type Manager struct {
	cfg      Config
	nodeID   string
	store    *store.MemoryStore
	raft     *raft.Node
	members  *membership
	dispatch *dispatcher.Dispatcher
	remote   *grpc.Server
	control  *grpc.Server
	listener net.Listener
	sock     net.Listener
	log      *slog.Logger

	// allocator is the running term's allocator, nil when this manager
	// is not the leader; the Control API reads its state through it.
	allocator atomic.Pointer[allocator.Allocator]

	stopOnce sync.Once
	ready    chan struct{}
}

// New prepares a manager; nothing listens until Run.
func New(cfg Config) (*Manager, error) {
	if cfg.Security == nil {
		return nil, errors.New("manager: no security config")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AdvertiseAddr == "" {
		cfg.AdvertiseAddr = cfg.ListenRemoteAPI
	}
	// The store enforces the service and network invariants as each entry
	// applies, replayed ones included, so it gets them before raft exists.
	st := store.New(store.CheckOf(controlapi.CheckServiceConflicts), store.CheckOf(controlapi.CheckNetworkConflicts),
		store.DeleteCheckOf(controlapi.CheckNetworkRemoval), store.CheckOf(allocator.CheckBindingConflicts))
	m := &Manager{cfg: cfg, nodeID: cfg.Security.Identity().NodeID, store: st, log: cfg.Logger, ready: make(chan struct{})}
	lis, err := net.Listen("tcp", cfg.ListenRemoteAPI)
	if err != nil {
		return nil, fmt.Errorf("listen on the remote API address %s: %w", cfg.ListenRemoteAPI, err)
	}
	m.listener = lis
	if cfg.AdvertiseAddr == "" || isUnspecifiedPort(cfg.AdvertiseAddr) {
		m.cfg.AdvertiseAddr = lis.Addr().String()
	}
	node, err := raft.NewNode(raft.Config{
		NodeID:                     m.nodeID,
		Addr:                       m.cfg.AdvertiseAddr,
		StateDir:                   filepath.Join(cfg.StateDir, "raft"),
		TickInterval:               cfg.TickInterval,
		ElectionTick:               cfg.ElectionTick,
		HeartbeatTick:              cfg.HeartbeatTick,
		SnapshotInterval:           cfg.SnapshotInterval,
		LogEntriesForSlowFollowers: cfg.LogEntriesForSlowFollowers,
		Dial:                       m.dial,
		Logger:                     cfg.Logger,
	}, m.store)
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("open raft state: %w", err)
	}
	m.raft = node
	m.store.SetProposer(node)
	m.members = &membership{raft: node}
	m.dispatch = dispatcher.New(m.store, m.members, cfg.Logger.With("component", "dispatcher"))
	m.buildServers()
	return m, nil
}

func isUnspecifiedPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// Addr is the remote API address other nodes dial.
func (m *Manager) Addr() string { return m.cfg.AdvertiseAddr }

// Store is the replicated store (for in-process tests and tools).
func (m *Manager) Store() *store.MemoryStore { return m.store }

// Raft is the raft node.
func (m *Manager) Raft() *raft.Node { return m.raft }

func (m *Manager) buildServers() {
	authz := ca.NewAuthorizer(m.clusterID, m.lookupNode)
	m.remote = grpc.NewServer(
		grpc.Creds(m.cfg.Security.ServerCredentials()),
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		grpc.ChainUnaryInterceptor(authz.UnaryServerInterceptor(), m.raftMembershipInterceptor()),
		grpc.ChainStreamInterceptor(authz.StreamServerInterceptor()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	)
	controlSrv := controlapi.NewServer(m.store, m.members, m.nodeID, m.log.With("component", "controlapi"))
	controlSrv.SetAllocatorSource(m)
	controlSrv.SetDataplaneSource(m.dispatch)
	api.RegisterRaftServer(m.remote, m.raft.Server())
	api.RegisterCAServer(m.remote, ca.NewServer(&caBackend{store: m.store}, m.log.With("component", "ca")))
	api.RegisterDispatcherServer(m.remote, m.dispatch)
	api.RegisterControlServer(m.remote, controlSrv)

	// The local socket is the operator's door: no TLS, file mode 0600.
	m.control = grpc.NewServer()
	api.RegisterControlServer(m.control, controlSrv)
}

// dial opens an mTLS connection to another node.
func (m *Manager) dial(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	return Dial(addr, m.cfg.Security)
}

// Dial opens an mTLS connection to a node's remote API.
func Dial(addr string, sc *ca.SecurityConfig) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(sc.ClientCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	)
}

// Run serves until ctx ends or raft stops.
func (m *Manager) Run(ctx context.Context) error {
	defer m.stop()
	if err := m.listenControl(); err != nil {
		return err
	}
	go func() { _ = m.remote.Serve(m.listener) }()
	go func() { _ = m.control.Serve(m.sock) }()

	if err := m.startRaft(ctx); err != nil {
		return err
	}
	m.log.Info("manager running", "node", m.nodeID, "addr", m.cfg.AdvertiseAddr, "control", m.cfg.ControlSocket)

	go m.signalReady(ctx)
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		m.runLeaderComponents(ctx)
	}()
	select {
	case <-ctx.Done():
		m.raft.Stop()
		<-leaderDone
		return nil
	case <-m.raft.Done():
		<-leaderDone
		return m.raft.Err()
	}
}

func (m *Manager) startRaft(ctx context.Context) error {
	switch {
	case m.raft.HasState():
		if err := m.raft.Restart(ctx); err != nil {
			return fmt.Errorf("restart raft: %w", err)
		}
	case m.cfg.Bootstrap != nil:
		if err := m.raft.Bootstrap(ctx); err != nil {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
	case m.cfg.JoinAddr != "":
		jctx, cancel := context.WithTimeout(ctx, joinTimeout)
		defer cancel()
		if err := m.raft.Join(jctx, m.cfg.JoinAddr); err != nil {
			return fmt.Errorf("join the raft group through %s: %w", m.cfg.JoinAddr, err)
		}
	default:
		return errors.New("no raft state, and neither a new cluster nor a join address was given")
	}
	return nil
}

func (m *Manager) listenControl() error {
	if m.cfg.ControlSocket == "" {
		return errors.New("manager: no control socket path")
	}
	if err := os.MkdirAll(filepath.Dir(m.cfg.ControlSocket), 0o700); err != nil {
		return fmt.Errorf("create the control socket's folder: %w", err)
	}
	if err := os.Remove(m.cfg.ControlSocket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the stale control socket: %w", err)
	}
	sock, err := net.Listen("unix", m.cfg.ControlSocket)
	if err != nil {
		return fmt.Errorf("listen on the control socket %s: %w", m.cfg.ControlSocket, err)
	}
	if err := os.Chmod(m.cfg.ControlSocket, 0o600); err != nil {
		sock.Close()
		return fmt.Errorf("restrict the control socket: %w", err)
	}
	m.sock = sock
	return nil
}

func (m *Manager) stop() {
	m.stopOnce.Do(func() {
		m.raft.Stop()
		stopServer(m.control)
		stopServer(m.remote)
		if m.sock != nil {
			m.sock.Close()
		}
		m.listener.Close()
	})
}

// stopServer stops gracefully, but not for long: session streams never end
// by themselves.
func stopServer(s *grpc.Server) {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		s.Stop()
	}
}

// Ready is closed once this manager has applied the cluster object and its
// own node record: from then on its node can open an agent session.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

func (m *Manager) signalReady(ctx context.Context) {
	watch := m.store.Watch(ctx)
	for {
		found := false
		m.store.View(func(tx store.ReadTx) { found = len(tx.Clusters()) > 0 && tx.Node(m.nodeID) != nil })
		if found {
			close(m.ready)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-m.raft.Done():
			return
		case _, ok := <-watch:
			if !ok {
				watch = m.store.Watch(ctx)
			}
		}
	}
}

// clusterID is the ID of the cluster this manager belongs to.
func (m *Manager) clusterID() string {
	return m.cfg.Security.Identity().ClusterID
}

// lookupNode finds a node for the authorizer. A node missing locally may be
// one that just joined through another manager: look again after a read
// barrier before calling it removed.
//
// A manager that has just joined raft has no state yet, not even the records
// of the managers that must send it the log. Until its store holds the
// cluster object it vouches only for the raft members it was told of when
// it joined (or, restarted, that it persisted): they get a stand-in manager
// record, so their raft messages reach it. Anyone else is turned away as
// not yet decidable, never as removed.
func (m *Manager) lookupNode(nodeID string) (*api.Node, error) {
	var (
		n           *api.Node
		initialised bool
	)
	m.store.View(func(tx store.ReadTx) {
		n = tx.Node(nodeID)
		initialised = len(tx.Clusters()) > 0
	})
	if n != nil {
		return n, nil
	}
	if !initialised {
		for _, ms := range m.raft.Members() {
			if ms.Member.NodeId == nodeID {
				return &api.Node{
					Id:   nodeID,
					Spec: &api.NodeSpec{DesiredRole: api.NodeRole_NODE_ROLE_MANAGER},
					Role: api.NodeRole_NODE_ROLE_MANAGER,
				}, nil
			}
		}
		return nil, errors.New("this manager has not caught up with the cluster yet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := m.store.ViewLinearizable(ctx, func(tx store.ReadTx) { n = tx.Node(nodeID) }); err != nil {
		return nil, err
	}
	if n == nil {
		return nil, fmt.Errorf("node %s: %w", nodeID, ca.ErrNodeNotFound)
	}
	return n, nil
}
