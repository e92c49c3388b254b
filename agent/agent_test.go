package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

// fakeDispatcher answers sessions one of three ways: not the leader (naming
// another), refusing the node, or serving a session.
type fakeDispatcher struct {
	api.UnimplementedDispatcherServer
	leader  string // when set: answer NOT_LEADER naming it
	refuse  bool   // when set: PermissionDenied
	managed []string
}

func (f *fakeDispatcher) Session(_ *api.SessionRequest, stream api.Dispatcher_SessionServer) error {
	switch {
	case f.refuse:
		return status.Error(codes.PermissionDenied, "node n1 was removed from the cluster")
	case f.leader != "":
		st, _ := status.New(codes.Unavailable, "not the leader").WithDetails(&errdetails.ErrorInfo{
			Reason: api.NotLeaderReason, Domain: api.ErrorDomain, Metadata: map[string]string{api.LeaderAddrKey: f.leader},
		})
		return st.Err()
	}
	if err := stream.Send(&api.SessionMessage{
		SessionId: "s1", Managers: f.managed, DesiredRole: api.NodeRole_NODE_ROLE_MANAGER,
		HeartbeatPeriod: durationpb.New(time.Hour),
	}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func serve(t *testing.T, d api.DispatcherServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	api.RegisterDispatcherServer(s, d)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func newTestAgent(managers []string, onMessage func(*api.SessionMessage)) *Agent {
	return New(Config{
		Managers: managers,
		Dial: func(_ context.Context, addr string) (*grpc.ClientConn, error) {
			return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		},
		Description: &api.NodeDescription{Hostname: "n1"},
		OnMessage:   onMessage,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

func TestAgentFollowsTheLeader(t *testing.T) {
	leader := serve(t, &fakeDispatcher{managed: []string{"m1:4242", "m2:4242"}})
	follower := serve(t, &fakeDispatcher{leader: leader})
	got := make(chan *api.SessionMessage, 1)
	a := newTestAgent([]string{follower}, func(m *api.SessionMessage) {
		select {
		case got <- m:
		default:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case m := <-got:
		if m.SessionId != "s1" || m.DesiredRole != api.NodeRole_NODE_ROLE_MANAGER {
			t.Fatalf("session message %v", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no session message: the agent did not follow the leader")
	}
	if ms := a.Managers(); len(ms) != 2 || ms[0] != "m1:4242" {
		t.Fatalf("managers after the first message: %v", ms)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

func TestAgentStopsWhenRemoved(t *testing.T) {
	addr := serve(t, &fakeDispatcher{refuse: true})
	a := newTestAgent([]string{addr}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Run(ctx); !errors.Is(err, ErrNodeRemoved) {
		t.Fatalf("Run = %v, want ErrNodeRemoved", err)
	}
}
