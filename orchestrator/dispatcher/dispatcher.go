// Package dispatcher is the agents' side of the leader: it keeps one session
// per node, takes heartbeats, marks nodes READY when they connect and DOWN
// when their heartbeats stop, and tells each node its desired role and the
// managers it may reach. Later it streams task assignments and network
// views; today a session carries the node's role and the manager list.
//
// Only the leader runs a dispatcher (Run, started and stopped with
// leadership); followers answer Unavailable and name the leader, and the
// agent moves there. It imports api, orchestrator/store and orchestrator/ca.
package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/store"
)

// DefaultHeartbeatPeriod is used when the cluster spec sets none.
const DefaultHeartbeatPeriod = 5 * time.Second

// storeWriteTimeout bounds a node status write: one lost in a leader
// change must not hold a session open for ever.
const storeWriteTimeout = 10 * time.Second

// missedHeartbeats is how many periods a node may stay silent before it is
// declared down.
const missedHeartbeats = 3

// Cluster is what the dispatcher needs to know of raft.
type Cluster interface {
	// LeaderAddr is the current leader's remote API address, "" if none.
	LeaderAddr() string
	// ManagerAddrs lists every manager's remote API address.
	ManagerAddrs() []string
}

// Dispatcher implements api.DispatcherServer.
type Dispatcher struct {
	api.UnimplementedDispatcherServer
	store   *store.MemoryStore
	cluster Cluster
	log     *slog.Logger

	mu       sync.Mutex
	running  context.Context // nil unless this manager leads
	period   time.Duration
	sessions map[string]*session // by node ID
	// deadlines holds, by node ID, when a node without a heartbeat is
	// declared down: sessions and nodes inherited from an older leader.
	deadlines map[string]time.Time
}

type session struct {
	id      string
	nodeID  string
	changed chan struct{} // signalled when the session must resend
	done    chan struct{} // closed when the session is replaced or expired
}

// New returns a dispatcher that serves nothing until Run.
func New(s *store.MemoryStore, c Cluster, log *slog.Logger) *Dispatcher {
	return &Dispatcher{store: s, cluster: c, log: log}
}

// Run serves sessions until ctx ends; the manager calls it while this node
// is the leader.
func (d *Dispatcher) Run(ctx context.Context) error {
	period := DefaultHeartbeatPeriod
	if err := d.store.ViewLinearizable(ctx, func(store.ReadTx) {}); err != nil {
		return fmt.Errorf("dispatcher: catch up with the log: %w", err)
	}
	// Read the nodes and start watching in one step, so no change falls
	// between the two.
	var nodes []*api.Node
	watch := d.store.ViewAndWatch(ctx, func(tx store.ReadTx) {
		nodes = tx.Nodes()
		if cs := tx.Clusters(); len(cs) > 0 {
			if p := cs[0].Spec.GetDispatcher().GetHeartbeatPeriod(); p != nil && p.AsDuration() > 0 {
				period = p.AsDuration()
			}
		}
	})
	d.mu.Lock()
	d.running = ctx
	d.period = period
	d.sessions = make(map[string]*session)
	d.deadlines = make(map[string]time.Time)
	// Nodes that were up under the previous leader get the usual grace to
	// find this one before they are declared down.
	grace := time.Now().Add(missedHeartbeats * period)
	for _, n := range nodes {
		if n.Status.GetState() != api.NodeState_NODE_STATE_DOWN {
			d.deadlines[n.Id] = grace
		}
	}
	d.mu.Unlock()
	d.log.Info("dispatcher started", "heartbeat_period", period)

	defer func() {
		d.mu.Lock()
		for _, s := range d.sessions {
			close(s.done)
		}
		d.running, d.sessions, d.deadlines = nil, nil, nil
		d.mu.Unlock()
		d.log.Info("dispatcher stopped")
	}()

	ticker := time.NewTicker(max(period/2, time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case b, ok := <-watch:
			if !ok {
				watch = d.store.Watch(ctx)
				d.signalAll()
				continue
			}
			d.noteChanges(b)
		case now := <-ticker.C:
			d.expire(ctx, now)
		}
	}
}

// noteChanges wakes the sessions of nodes whose record changed.
func (d *Dispatcher) noteChanges(b store.Batch) {
	if b.Restored {
		d.signalAll()
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ev := range b.Events {
		if ev.Kind != store.KindNode {
			continue
		}
		id := ev.Object.GetId()
		s, ok := d.sessions[id]
		if !ok {
			continue
		}
		if ev.Action == api.StoreAction_KIND_DELETE {
			// A removed node's session ends now, not when its
			// heartbeats would have run out.
			close(s.done)
			delete(d.sessions, id)
			delete(d.deadlines, id)
			continue
		}
		signal(s.changed)
	}
}

func (d *Dispatcher) signalAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sessions {
		signal(s.changed)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// expire declares down every node whose heartbeat deadline passed.
func (d *Dispatcher) expire(ctx context.Context, now time.Time) {
	d.mu.Lock()
	var expired []string
	for id, deadline := range d.deadlines {
		if now.After(deadline) {
			expired = append(expired, id)
			delete(d.deadlines, id)
			if s, ok := d.sessions[id]; ok {
				close(s.done)
				delete(d.sessions, id)
			}
		}
	}
	d.mu.Unlock()
	for _, id := range expired {
		if d.hasSession(id) {
			continue // it came back meanwhile
		}
		d.log.Warn("node missed its heartbeats", "node", id)
		uctx, cancel := context.WithTimeout(ctx, storeWriteTimeout)
		err := d.setNodeState(uctx, id, api.NodeState_NODE_STATE_DOWN, "heartbeat failure", "", nil)
		if err == nil && d.hasSession(id) {
			// It opened a session while DOWN was being written; its
			// READY may have been read before DOWN landed.
			err = d.setNodeState(uctx, id, api.NodeState_NODE_STATE_READY, "", "", nil)
		}
		cancel()
		if err != nil {
			d.log.Error("mark node down", "node", id, "err", err)
		}
	}
}

func (d *Dispatcher) hasSession(nodeID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.sessions[nodeID]
	return ok
}

// setNodeState records a node's state; desc and addr are kept when empty.
func (d *Dispatcher) setNodeState(ctx context.Context, nodeID string, state api.NodeState, msg, addr string, desc *api.NodeDescription) error {
	return d.store.Update(ctx, func(tx store.Tx) error {
		n := tx.Node(nodeID)
		if n == nil {
			return nil // removed meanwhile
		}
		next := proto.Clone(n).(*api.Node)
		if next.Status == nil {
			next.Status = &api.NodeStatus{}
		}
		next.Status.State = state
		next.Status.Message = msg
		if addr != "" {
			next.Status.Addr = addr
		}
		if desc != nil {
			next.Description = desc
		}
		if proto.Equal(n, next) {
			return nil
		}
		return tx.Update(next)
	})
}

// Session registers the calling node and streams what it must know until
// the node goes away, a newer session replaces this one, or this manager
// stops leading.
func (d *Dispatcher) Session(req *api.SessionRequest, stream api.Dispatcher_SessionServer) error {
	ctx := stream.Context()
	id, ok := ca.IdentityFromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "a session needs a node certificate")
	}
	s, period, leaderCtx, err := d.register(id.NodeID)
	if err != nil {
		return err
	}
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			addr = host
		}
	}
	uctx, cancel := context.WithTimeout(ctx, storeWriteTimeout)
	err = d.setNodeState(uctx, id.NodeID, api.NodeState_NODE_STATE_READY, "", addr, req.Description)
	cancel()
	if err != nil {
		d.unregister(s)
		return status.Errorf(codes.Unavailable, "record node %s ready: %v", id.NodeID, err)
	}
	d.log.Info("node session started", "node", id.NodeID, "addr", addr)
	defer d.unregister(s)

	var last *api.SessionMessage
	for {
		msg := d.sessionMessage(s, period)
		if last == nil || !proto.Equal(msg, last) {
			if err := stream.Send(msg); err != nil {
				return err
			}
			last = msg
		}
		select {
		case <-s.changed:
		case <-time.After(missedHeartbeats * period):
			// Refresh the manager list now and then.
		case <-s.done:
			return status.Error(codes.Unavailable, "session ended by the dispatcher; open a new one")
		case <-leaderCtx.Done():
			return status.Error(codes.Unavailable, "this manager stopped leading; reconnect to the new leader")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (d *Dispatcher) sessionMessage(s *session, period time.Duration) *api.SessionMessage {
	role := api.NodeRole_NODE_ROLE_WORKER
	d.store.View(func(tx store.ReadTx) {
		if n := tx.Node(s.nodeID); n != nil {
			role = n.Spec.GetDesiredRole()
		}
	})
	return &api.SessionMessage{
		SessionId:       s.id,
		Managers:        d.cluster.ManagerAddrs(),
		DesiredRole:     role,
		HeartbeatPeriod: durationpb.New(period),
	}
}

func (d *Dispatcher) register(nodeID string) (*session, time.Duration, context.Context, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running == nil {
		return nil, 0, nil, d.notLeader()
	}
	if old, ok := d.sessions[nodeID]; ok {
		close(old.done)
	}
	s := &session{id: newSessionID(), nodeID: nodeID, changed: make(chan struct{}, 1), done: make(chan struct{})}
	d.sessions[nodeID] = s
	d.deadlines[nodeID] = time.Now().Add(missedHeartbeats * d.period)
	return s, d.period, d.running, nil
}

func (d *Dispatcher) unregister(s *session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.sessions[s.nodeID]; ok && cur == s {
		delete(d.sessions, s.nodeID)
		close(s.done)
	}
}

// Heartbeat extends a session's deadline.
func (d *Dispatcher) Heartbeat(ctx context.Context, req *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	id, ok := ca.IdentityFromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "a heartbeat needs a node certificate")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running == nil {
		return nil, d.notLeader()
	}
	s, ok := d.sessions[id.NodeID]
	if !ok || s.id != req.SessionId {
		return nil, status.Errorf(codes.NotFound, "session %q of node %s is unknown; open a new one", req.SessionId, id.NodeID)
	}
	d.deadlines[id.NodeID] = time.Now().Add(missedHeartbeats * d.period)
	return &api.HeartbeatResponse{Period: durationpb.New(d.period)}, nil
}

// notLeader is the error followers answer with; its message names the
// leader so the agent can move there.
func (d *Dispatcher) notLeader() error {
	leader := d.cluster.LeaderAddr()
	if leader == "" {
		return status.Error(codes.Unavailable, "this manager is not the leader and no leader is known")
	}
	st := status.Newf(codes.Unavailable, "this manager is not the leader; the leader is at %s", leader)
	if withLeader, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   api.NotLeaderReason,
		Domain:   api.ErrorDomain,
		Metadata: map[string]string{api.LeaderAddrKey: leader},
	}); err == nil {
		st = withLeader
	}
	return st.Err()
}

func newSessionID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
