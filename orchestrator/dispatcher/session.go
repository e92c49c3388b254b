package dispatcher

// This file owns the session side: an agent's Session stream (registering
// the node, marking it READY, resending its message when something it must
// know changes), its heartbeats, and the NOT_LEADER answer followers give.
// Run, in dispatcher.go, owns the watch and the expiry of silent nodes.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
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

// The errors a node's streams end with when the dispatcher ends them; the
// agent opens a new session, with the new leader if there is one.
var (
	errSessionEnded   = status.Error(codes.Unavailable, "session ended by the dispatcher; open a new one")
	errStoppedLeading = status.Error(codes.Unavailable, "this manager stopped leading; reconnect to the new leader")
)

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
		period = d.heartbeatPeriodNow(period)
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
			return errSessionEnded
		case <-leaderCtx.Done():
			return errStoppedLeading
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// heartbeatPeriodNow is the current period while this dispatcher runs,
// else last.
func (d *Dispatcher) heartbeatPeriodNow(last time.Duration) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running == nil {
		return last
	}
	return d.period
}

func (d *Dispatcher) sessionMessage(s *session, period time.Duration) *api.SessionMessage {
	role := api.NodeRole_NODE_ROLE_WORKER
	d.store.View(func(tx store.ReadTx) {
		if n := tx.Node(s.nodeID); n != nil {
			role = n.Spec.GetDesiredRole()
		}
	})
	d.mu.Lock()
	queries := pendingQueries(s)
	d.mu.Unlock()
	return &api.SessionMessage{
		SessionId:       s.id,
		Managers:        d.cluster.ManagerAddrs(),
		DesiredRole:     role,
		HeartbeatPeriod: durationpb.New(period),
		Queries:         queries,
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
	d.mu.Lock()
	defer d.mu.Unlock()
	s, err := d.callerSessionLocked(ctx, req.SessionId, "a heartbeat")
	if err != nil {
		return nil, err
	}
	d.deadlines[s.nodeID] = time.Now().Add(missedHeartbeats * d.period)
	return &api.HeartbeatResponse{Period: durationpb.New(d.period)}, nil
}

// callerSessionLocked is the calling node's session sessionID, or the error to answer what
// (the call, for the message) with: no node certificate, not the leader, or a session that is
// not the node's current one. d.mu is held.
func (d *Dispatcher) callerSessionLocked(ctx context.Context, sessionID, what string) (*session, error) {
	id, ok := ca.IdentityFromContext(ctx)
	if !ok {
		return nil, status.Errorf(codes.Unauthenticated, "%s needs a node certificate", what)
	}
	if d.running == nil {
		return nil, d.notLeader()
	}
	s, ok := d.sessions[id.NodeID]
	if !ok || s.id != sessionID {
		return nil, staleSession(id.NodeID, sessionID)
	}
	return s, nil
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
