package dispatcher_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/dispatcher"
	"github.com/shoal/shoal/orchestrator/store"
)

const (
	node1 = "node1aaaa"
	node2 = "node2bbbb"

	// longPeriod is a heartbeat period no test outlives: nothing expires.
	longPeriod = time.Hour
	// shortPeriod makes silent nodes go down within a fraction of a second.
	shortPeriod = 50 * time.Millisecond
)

var desc1 = &api.NodeDescription{Hostname: "host-1", Os: "linux", Arch: "amd64", EngineVersion: "sim"}

// leaderInfo returns the ErrorInfo detail a follower attaches, nil if none.
func leaderInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func TestFollowerNamesTheLeader(t *testing.T) {
	tests := []struct {
		name   string
		leader string
	}{
		{name: "leader known", leader: "10.0.0.2:4242"},
		{name: "no leader", leader: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, longPeriod)
			e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
			e.cluster.leader = tc.leader
			before, err := e.store.Snapshot()
			if err != nil {
				t.Fatal(err)
			}

			s := e.session(t, node1, "192.0.2.7:5000", desc1)
			sessionErr := s.end(t)
			_, heartbeatErr := e.d.Heartbeat(e.nodeContext(t, t.Context(), node1, "192.0.2.7:5000"), &api.HeartbeatRequest{SessionId: "x"})

			for call, err := range map[string]error{"Session": sessionErr, "Heartbeat": heartbeatErr} {
				if status.Code(err) != codes.Unavailable {
					t.Errorf("%s: got %v, want Unavailable", call, err)
					continue
				}
				info := leaderInfo(err)
				if tc.leader == "" {
					if info != nil {
						t.Errorf("%s: names a leader (%v) though none is known", call, info)
					}
					continue
				}
				if info == nil {
					t.Errorf("%s: %v has no ErrorInfo detail", call, err)
					continue
				}
				if info.Reason != api.NotLeaderReason || info.Domain != api.ErrorDomain || info.Metadata[api.LeaderAddrKey] != tc.leader {
					t.Errorf("%s: detail %v, want reason %s domain %s %s=%s", call, info, api.NotLeaderReason, api.ErrorDomain, api.LeaderAddrKey, tc.leader)
				}
				if !strings.Contains(status.Convert(err).Message(), tc.leader) {
					t.Errorf("%s: message %q does not name the leader", call, status.Convert(err).Message())
				}
			}
			if len(s.stream.msgs) != 0 {
				t.Error("a follower sent a session message")
			}
			after, err := e.store.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(before, after) {
				t.Error("a follower changed the store")
			}
		})
	}
}

// plainAuth is the AuthInfo of a connection without TLS.
type plainAuth struct{}

func (plainAuth) AuthType() string { return "insecure" }

func TestCallsWithoutNodeCertificate(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.run(t)
	contexts := map[string]context.Context{
		"no peer": t.Context(),
		"no TLS": peer.NewContext(t.Context(), &peer.Peer{
			Addr:     &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5000},
			AuthInfo: plainAuth{},
		}),
		"TLS without a client certificate": peer.NewContext(t.Context(), &peer.Peer{
			Addr:     &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5000},
			AuthInfo: credentials.TLSInfo{},
		}),
	}
	for name, ctx := range contexts {
		t.Run(name, func(t *testing.T) {
			stream := &fakeStream{ctx: ctx, msgs: make(chan *api.SessionMessage, 1)}
			err := e.d.Session(&api.SessionRequest{Description: desc1}, stream)
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("Session: got %v, want Unauthenticated", err)
			}
			_, err = e.d.Heartbeat(ctx, &api.HeartbeatRequest{SessionId: "x"})
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("Heartbeat: got %v, want Unauthenticated", err)
			}
		})
	}
}

func TestSessionMarksNodeReady(t *testing.T) {
	tests := []struct {
		name       string
		specPeriod time.Duration
		wantPeriod time.Duration
		role       api.NodeRole
	}{
		{name: "worker, period from the spec", specPeriod: longPeriod, wantPeriod: longPeriod, role: api.NodeRole_NODE_ROLE_WORKER},
		{name: "manager, default period", specPeriod: 0, wantPeriod: dispatcher.DefaultHeartbeatPeriod, role: api.NodeRole_NODE_ROLE_MANAGER},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, tc.specPeriod)
			n := newNode(node1, api.NodeState_NODE_STATE_DOWN)
			n.Spec.DesiredRole = tc.role
			n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN
			e.addNodes(t, n)
			e.run(t)

			s := e.session(t, node1, "192.0.2.7:5000", desc1)
			msg := s.recv(t)
			if msg.SessionId == "" {
				t.Error("no session ID")
			}
			if !slices.Equal(msg.Managers, testManagers) {
				t.Errorf("managers %v, want %v", msg.Managers, testManagers)
			}
			if msg.DesiredRole != tc.role {
				t.Errorf("desired role %v, want %v", msg.DesiredRole, tc.role)
			}
			if got := msg.HeartbeatPeriod.AsDuration(); got != tc.wantPeriod {
				t.Errorf("heartbeat period %v, want %v", got, tc.wantPeriod)
			}

			got := e.node(node1)
			if got.Status.GetState() != api.NodeState_NODE_STATE_READY || got.Status.GetMessage() != "" {
				t.Errorf("status %v, want READY with no message", got.Status)
			}
			if got.Status.GetAddr() != "192.0.2.7" {
				t.Errorf("status addr %q, want the session's peer host 192.0.2.7", got.Status.GetAddr())
			}
			if !proto.Equal(got.Description, desc1) {
				t.Errorf("description %v, want %v", got.Description, desc1)
			}
			if !proto.Equal(got.Spec, n.Spec) {
				t.Errorf("the session changed the spec to %v", got.Spec)
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN), newNode(node2, api.NodeState_NODE_STATE_DOWN))
	e.run(t)
	s1 := e.session(t, node1, "192.0.2.1:5000", desc1)
	id1 := s1.recv(t).SessionId
	ctx1 := e.nodeContext(t, t.Context(), node1, "192.0.2.1:5000")
	ctx2 := e.nodeContext(t, t.Context(), node2, "192.0.2.2:5000")

	tests := []struct {
		name    string
		ctx     context.Context
		session string
		code    codes.Code
	}{
		{name: "right session", ctx: ctx1, session: id1, code: codes.OK},
		{name: "wrong session ID", ctx: ctx1, session: id1 + "x", code: codes.NotFound},
		{name: "empty session ID", ctx: ctx1, session: "", code: codes.NotFound},
		{name: "another node's session", ctx: ctx2, session: id1, code: codes.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.d.Heartbeat(tc.ctx, &api.HeartbeatRequest{SessionId: tc.session})
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
			if tc.code == codes.OK && resp.GetPeriod().AsDuration() != longPeriod {
				t.Errorf("period %v, want %v", resp.GetPeriod().AsDuration(), longPeriod)
			}
		})
	}
	if s1.ended() {
		t.Error("a bad heartbeat ended the session")
	}
}

func TestSilentNodeIsMarkedDown(t *testing.T) {
	e := newTestEnv(t, shortPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.run(t)
	ctx := e.nodeContext(t, t.Context(), node1, "192.0.2.1:5000")

	s := e.session(t, node1, "192.0.2.1:5000", desc1)
	id := s.recv(t).SessionId
	// No heartbeats from here on.
	if err := s.end(t); status.Code(err) != codes.Unavailable {
		t.Errorf("the expired session ended with %v, want Unavailable", err)
	}
	eventually(t, "the node is marked down", func() bool {
		return e.node(node1).Status.GetState() == api.NodeState_NODE_STATE_DOWN
	})
	if msg := e.node(node1).Status.GetMessage(); !strings.Contains(msg, "heartbeat") {
		t.Errorf("status message %q does not say why the node is down", msg)
	}
	if _, err := e.d.Heartbeat(ctx, &api.HeartbeatRequest{SessionId: id}); status.Code(err) != codes.NotFound {
		t.Errorf("heartbeat on the expired session: got %v, want NotFound", err)
	}
	// The node comes back with a new session.
	s2 := e.session(t, node1, "192.0.2.1:5000", desc1)
	if id2 := s2.recv(t).SessionId; id2 == id {
		t.Error("the new session reuses the expired one's ID")
	}
}

func TestDisconnectedNodeIsMarkedDown(t *testing.T) {
	e := newTestEnv(t, shortPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.run(t)
	s := e.session(t, node1, "192.0.2.1:5000", desc1)
	s.recv(t)
	s.cancel() // the agent goes away
	s.end(t)
	eventually(t, "the node is marked down", func() bool {
		return e.node(node1).Status.GetState() == api.NodeState_NODE_STATE_DOWN
	})
}

func TestHeartbeatsKeepNodeReady(t *testing.T) {
	e := newTestEnv(t, shortPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN), newNode(node2, api.NodeState_NODE_STATE_DOWN))
	e.run(t)

	// node1 heartbeats, node2 is silent and serves as the clock: node1
	// opened its session first, so when node2 is declared down, node1's
	// first deadline has passed too.
	alive := e.session(t, node1, "192.0.2.1:5000", desc1)
	id := alive.recv(t).SessionId
	ctx := e.nodeContext(t, t.Context(), node1, "192.0.2.1:5000")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(shortPeriod / 10):
			}
			if _, err := e.d.Heartbeat(ctx, &api.HeartbeatRequest{SessionId: id}); err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	defer close(stop)

	silent := e.session(t, node2, "192.0.2.2:5000", desc1)
	silent.recv(t)
	eventually(t, "the silent node is marked down", func() bool {
		return e.node(node2).Status.GetState() == api.NodeState_NODE_STATE_DOWN
	})
	if _, err := e.d.Heartbeat(ctx, &api.HeartbeatRequest{SessionId: id}); err != nil {
		t.Fatalf("the heartbeating node lost its session: %v", err)
	}
	if alive.ended() {
		t.Error("the heartbeating node's session ended")
	}
	if st := e.node(node1).Status.GetState(); st != api.NodeState_NODE_STATE_READY {
		t.Errorf("the heartbeating node is %v, want READY", st)
	}
}

func TestInheritedNodesAreMarkedDownWithoutSession(t *testing.T) {
	e := newTestEnv(t, shortPeriod)
	e.addNodes(t,
		newNode(node1, api.NodeState_NODE_STATE_READY),
		newNode(node2, api.NodeState_NODE_STATE_UNKNOWN),
	)
	e.run(t)
	for _, id := range []string{node1, node2} {
		eventually(t, id+" is marked down", func() bool {
			return e.node(id).Status.GetState() == api.NodeState_NODE_STATE_DOWN
		})
	}
}

func TestDesiredRoleChangeIsSent(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN), newNode(node2, api.NodeState_NODE_STATE_DOWN))
	e.run(t)
	s := e.session(t, node1, "192.0.2.1:5000", desc1)
	first := s.recv(t)
	if first.DesiredRole != api.NodeRole_NODE_ROLE_WORKER {
		t.Fatalf("first message role %v, want worker", first.DesiredRole)
	}
	for _, role := range []api.NodeRole{api.NodeRole_NODE_ROLE_MANAGER, api.NodeRole_NODE_ROLE_WORKER} {
		// A change to another node must not disturb this session; the
		// next message is the one for this node's change.
		e.setDesiredRole(t, node2, role)
		e.setDesiredRole(t, node1, role)
		msg := s.recv(t)
		if msg.DesiredRole != role {
			t.Errorf("message after the change says role %v, want %v", msg.DesiredRole, role)
		}
		if msg.SessionId != first.SessionId {
			t.Errorf("session ID changed from %s to %s", first.SessionId, msg.SessionId)
		}
		if !proto.Equal(msg.HeartbeatPeriod, first.HeartbeatPeriod) || !slices.Equal(msg.Managers, first.Managers) {
			t.Errorf("message %v differs from the first %v in more than the role", msg, first)
		}
	}
}

func TestStoppingRunEndsSessions(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN), newNode(node2, api.NodeState_NODE_STATE_DOWN))
	stop := e.run(t)
	s1 := e.session(t, node1, "192.0.2.1:5000", desc1)
	id1 := s1.recv(t).SessionId
	s2 := e.session(t, node2, "192.0.2.2:5000", desc1)
	s2.recv(t)

	stop()
	for i, s := range []*openSession{s1, s2} {
		if err := s.end(t); status.Code(err) != codes.Unavailable {
			t.Errorf("session %d ended with %v, want Unavailable", i+1, err)
		}
	}
	// Back to follower: heartbeats and new sessions are sent to the leader.
	_, err := e.d.Heartbeat(e.nodeContext(t, t.Context(), node1, "192.0.2.1:5000"), &api.HeartbeatRequest{SessionId: id1})
	if status.Code(err) != codes.Unavailable || leaderInfo(err) == nil {
		t.Errorf("heartbeat after Run stopped: got %v, want Unavailable naming the leader", err)
	}
	s3 := e.session(t, node1, "192.0.2.1:5000", desc1)
	if err := s3.end(t); status.Code(err) != codes.Unavailable || leaderInfo(err) == nil {
		t.Errorf("session after Run stopped: got %v, want Unavailable naming the leader", err)
	}
}

func TestSecondSessionReplacesFirst(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.run(t)
	ctx := e.nodeContext(t, t.Context(), node1, "192.0.2.1:5000")

	first := e.session(t, node1, "192.0.2.1:5000", desc1)
	id1 := first.recv(t).SessionId
	second := e.session(t, node1, "192.0.2.9:5000", desc1)
	id2 := second.recv(t).SessionId
	if id1 == id2 {
		t.Fatal("both sessions have the same ID")
	}
	if err := first.end(t); status.Code(err) != codes.Unavailable {
		t.Errorf("the replaced session ended with %v, want Unavailable", err)
	}
	if _, err := e.d.Heartbeat(ctx, &api.HeartbeatRequest{SessionId: id1}); status.Code(err) != codes.NotFound {
		t.Errorf("heartbeat on the replaced session: got %v, want NotFound", err)
	}
	if _, err := e.d.Heartbeat(ctx, &api.HeartbeatRequest{SessionId: id2}); err != nil {
		t.Errorf("heartbeat on the new session: %v", err)
	}
	if second.ended() {
		t.Fatal("the new session ended when the first did")
	}
	if n := e.node(node1); n.Status.GetState() != api.NodeState_NODE_STATE_READY || n.Status.GetAddr() != "192.0.2.9" {
		t.Errorf("status %v, want READY from 192.0.2.9", n.Status)
	}
	// The new session is the one that hears about changes.
	e.setDesiredRole(t, node1, api.NodeRole_NODE_ROLE_MANAGER)
	if msg := second.recv(t); msg.DesiredRole != api.NodeRole_NODE_ROLE_MANAGER || msg.SessionId != id2 {
		t.Errorf("new session got %v, want role manager on session %s", msg, id2)
	}
}

// TestHeartbeatPeriodFollowsTheCluster starts the dispatcher with an hour's
// period (as a new cluster's first leader may, before its cluster object is
// written) and shortens it afterwards: sessions learn the new period and a
// silent node goes down on the new clock.
func TestHeartbeatPeriodFollowsTheCluster(t *testing.T) {
	e := newTestEnv(t, time.Hour)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.run(t)
	s := e.session(t, node1, "192.0.2.1:5000", desc1)
	if got := s.recv(t).HeartbeatPeriod.AsDuration(); got != time.Hour {
		t.Fatalf("first session message: period %s, want 1h", got)
	}
	if err := e.store.Update(t.Context(), func(tx store.Tx) error {
		c := tx.Cluster(testClusterID)
		c.Spec.Dispatcher = &api.DispatcherConfig{HeartbeatPeriod: durationpb.New(shortPeriod)}
		return tx.Update(c)
	}); err != nil {
		t.Fatal(err)
	}
	if got := s.recv(t).HeartbeatPeriod.AsDuration(); got != shortPeriod {
		t.Fatalf("after the change: period %s, want %s", got, shortPeriod)
	}
	// No heartbeats: the node goes down on the new clock.
	eventually(t, "the node is marked down", func() bool {
		return e.node(node1).Status.GetState() == api.NodeState_NODE_STATE_DOWN
	})
}
