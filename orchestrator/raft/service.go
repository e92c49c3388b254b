package raft

// This file owns the receiving half of the network: the api.RaftServer that
// the caller registers on its gRPC server (authorization is the caller's
// interceptors' job), and the mapping between this package's errors and
// gRPC status codes in both directions.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// forwardedKey marks a Join or Leave a follower forwarded to the leader, so
// a request never travels more than one hop.
const forwardedKey = "shoal-raft-forwarded"

// Server returns the Raft gRPC service to register on the manager's server.
// The server must allow messages of 256 MiB (grpc.MaxRecvMsgSize), since a
// snapshot travels whole in one message.
func (n *Node) Server() api.RaftServer {
	return &service{n: n}
}

type service struct {
	api.UnimplementedRaftServer
	n *Node
}

// Stream receives raft messages from one peer and hands them to the Ready
// loop. Messages from removed members end the stream with an error that
// tells the sender it was removed.
func (s *service) Stream(stream grpc.ClientStreamingServer[api.RaftMessage, api.RaftStreamResponse]) error {
	n := s.n
	if err := n.running(); err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	self := n.raftID.Load()
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&api.RaftStreamResponse{})
		}
		if err != nil {
			return err
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(msg.GetMessage(), m); err != nil {
			return status.Errorf(codes.InvalidArgument, "message: not a raft message: %v", err)
		}
		from := m.GetFrom()
		if n.members.isRemoved(from) {
			return status.Errorf(codes.FailedPrecondition, "%s: raft ID %s", removedMarker, hexID(from))
		}
		if m.GetTo() != self {
			n.log.Debug("dropping a raft message for another member", "to", hexID(m.GetTo()), "from", hexID(from))
			continue
		}
		if n.transport.dropped(from, self, m) {
			continue
		}
		n.transport.markContact(from)
		select {
		case n.recvc <- m:
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-n.done:
			return status.Error(codes.Unavailable, "raft node stopped")
		}
	}
}

// Join adds the caller to the group; a follower forwards it to the leader.
func (s *service) Join(ctx context.Context, req *api.JoinRaftRequest) (*api.JoinRaftResponse, error) {
	switch {
	case req.GetNodeId() == "":
		return nil, status.Error(codes.InvalidArgument, "node_id: empty")
	case req.GetAddr() == "":
		return nil, status.Error(codes.InvalidArgument, "addr: empty")
	}
	resp, err := s.n.handleJoin(ctx, req, isForwarded(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// Leave removes a member; a follower forwards it to the leader.
func (s *service) Leave(ctx context.Context, req *api.LeaveRaftRequest) (*api.LeaveRaftResponse, error) {
	if req.GetRaftId() == 0 {
		return nil, status.Error(codes.InvalidArgument, "raft_id: zero")
	}
	remove := s.n.removeMemberRetrying
	if isForwarded(ctx) {
		// The member that forwarded it retries; this one answers once.
		remove = func(ctx context.Context, id uint64) error { return s.n.removeMember(ctx, id, true) }
	}
	if err := remove(ctx, req.GetRaftId()); err != nil {
		return nil, toStatus(err)
	}
	return &api.LeaveRaftResponse{}, nil
}

// Ping answers with this node's raft ID.
func (s *service) Ping(context.Context, *api.PingRequest) (*api.PingResponse, error) {
	if err := s.n.running(); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &api.PingResponse{RaftId: s.n.raftID.Load()}, nil
}

func isForwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

// IsForwarded tells whether an incoming Join or Leave was forwarded by
// another member rather than sent by the node it concerns; the caller's
// authorization uses it to decide whose identity the request must carry.
func IsForwarded(ctx context.Context) bool { return isForwarded(ctx) }

func forwardedContext(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, forwardedKey, "1")
}

// toStatus turns an error of this package into a gRPC status error.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, ErrCannotRemove):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrConfChangeInProgress):
		code = codes.Aborted
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader), errors.Is(err, ErrStopped),
		errors.Is(err, ErrProposalDropped):
		code = codes.Unavailable
	case errors.Is(err, errAlreadyMember):
		code = codes.AlreadyExists
	}
	return status.Error(code, err.Error())
}

// fromStatus turns a status error from another manager back into this
// package's error where one matches, so callers can use errors.Is.
func fromStatus(err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	var sentinel error
	switch s.Code() {
	case codes.FailedPrecondition:
		sentinel = ErrCannotRemove
	case codes.Aborted:
		sentinel = ErrConfChangeInProgress
	case codes.DeadlineExceeded:
		sentinel = context.DeadlineExceeded
	default:
		return err
	}
	if detail := strings.TrimPrefix(s.Message(), sentinel.Error()); detail != s.Message() {
		return fmt.Errorf("%w%s", sentinel, detail)
	}
	return fmt.Errorf("%w: %s", sentinel, s.Message())
}
