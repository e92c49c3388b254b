package raft

// This file owns changes of membership and the views of it: joining (the
// leader's side of Raft.Join), removing a member and leaving, handing off
// leadership, and Members. Every change is a raft conf change proposed by
// the leader, one at a time; followers forward to the leader.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// errConfChangeNotTaken is what a membership change proposal gets when raft
// turned it into an empty entry (an earlier change may be unapplied); it is
// proposed again.
var errConfChangeNotTaken = errors.New("raft did not take the membership change yet")

// errAlreadyMember is returned when a node joins again with another address
// while it is still a member.
var errAlreadyMember = errors.New("node is already a member with another address")

// MemberStatus is a member and how this node sees it.
type MemberStatus struct {
	Member *api.RaftMember
	// Reachable: always true for this node; for others, a ping or a message
	// from it arrived within the last few seconds.
	Reachable bool
	Leader    bool
}

// Members returns the members sorted by raft ID.
func (n *Node) Members() []MemberStatus {
	self, lead := n.raftID.Load(), n.board.get().LeaderID
	list := n.members.list()
	out := make([]MemberStatus, 0, len(list))
	for _, m := range list {
		id := m.GetRaftId()
		out = append(out, MemberStatus{
			Member:    m,
			Reachable: id == self || n.transport.reachable(id),
			Leader:    id == lead,
		})
	}
	return out
}

// handleJoin is the leader's side of Raft.Join; a follower forwards the
// request to the leader unless it was forwarded already.
func (n *Node) handleJoin(ctx context.Context, req *api.JoinRaftRequest, forwarded bool) (*api.JoinRaftResponse, error) {
	if err := n.running(); err != nil {
		return nil, err
	}
	if !n.IsLeader() {
		if forwarded {
			return nil, ErrNotLeader
		}
		client, err := n.leaderClient(ctx)
		if err != nil {
			return nil, err
		}
		return client.Join(forwardedContext(ctx), req, callOptions()...)
	}
	if resp, ok, err := n.existingMember(req); ok || err != nil {
		return resp, err
	}
	if err := n.acquireConfChange(ctx); err != nil {
		return nil, err
	}
	defer n.releaseConfChange()
	// A join of the same node may have completed while we waited.
	if resp, ok, err := n.existingMember(req); ok || err != nil {
		return resp, err
	}
	id := randomRaftID(n.members.used)
	member := &api.RaftMember{RaftId: id, NodeId: req.GetNodeId(), Addr: req.GetAddr()}
	memberCtx, err := proto.Marshal(member)
	if err != nil {
		return nil, fmt.Errorf("marshal member: %w", err)
	}
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(id), Context: memberCtx}
	if err := n.proposeConfChange(ctx, cc); err != nil {
		return nil, fmt.Errorf("add raft member %s for node %s: %w", hexID(id), req.GetNodeId(), err)
	}
	n.log.Info("admitted raft member", "raft_id", hexID(id), "member_node_id", req.GetNodeId(), "addr", req.GetAddr())
	return n.joinResponse(id), nil
}

// existingMember answers a join by a node that is a member already: the same
// address gets its raft ID again, another address is refused.
func (n *Node) existingMember(req *api.JoinRaftRequest) (*api.JoinRaftResponse, bool, error) {
	m, ok := n.members.byNodeID(req.GetNodeId())
	if !ok {
		return nil, false, nil
	}
	if m.GetAddr() != req.GetAddr() {
		return nil, true, fmt.Errorf("join node %s at %s: %w: raft ID %s at %s; remove it first",
			req.GetNodeId(), req.GetAddr(), errAlreadyMember, hexID(m.GetRaftId()), m.GetAddr())
	}
	return n.joinResponse(m.GetRaftId()), true, nil
}

func (n *Node) joinResponse(id uint64) *api.JoinRaftResponse {
	return &api.JoinRaftResponse{RaftId: id, Members: n.members.list(), Removed: n.members.removedIDs()}
}

// RemoveMember removes the member with raftID from the group and returns
// once the removal is applied. It is refused (ErrCannotRemove) for the last
// member, and when the remaining reachable members would be fewer than a
// quorum of the new configuration. Only one membership change runs at a
// time (ErrConfChangeInProgress). Removing an ID that was removed already
// succeeds. On a follower the request is forwarded to the leader, whose
// view of reachability decides. While leadership moves (no leader, or the
// member asked does not lead) it tries again, for up to three election
// timeouts (an election and a hand-off take one or two), then returns the
// last answer.
func (n *Node) RemoveMember(ctx context.Context, raftID uint64) error {
	return n.removeMemberRetrying(ctx, raftID)
}

// removeMemberRetrying removes id, trying again while leadership is moving:
// the leader this node knows may have stepped down, or the member it hands
// off to may not lead yet. A removal is idempotent, so a try whose answer
// was lost is safe to repeat. Other refusals end it at once.
func (n *Node) removeMemberRetrying(ctx context.Context, id uint64) error {
	// Removing itself, the node may stop on the removal between two tries.
	removedSelf := func() bool { return id == n.raftID.Load() && errors.Is(n.Err(), ErrMemberRemoved) }
	backoff := n.cfg.TickInterval
	giveUp := time.Now().Add(3 * n.cfg.electionTimeout())
	for {
		err := n.removeMember(ctx, id, false)
		if err == nil || removedSelf() {
			return nil
		}
		if !leadershipMoving(err) || time.Now().After(giveUp) {
			return err
		}
		n.log.Debug("removal not possible yet; retrying", "raft_id", hexID(id), "err", err)
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, time.Second)
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-n.done:
			if removedSelf() {
				return nil
			}
			return errors.Join(n.stoppedErr(), err)
		}
	}
}

func (n *Node) removeMember(ctx context.Context, id uint64, forwarded bool) error {
	if err := n.running(); err != nil {
		return err
	}
	if n.members.isRemoved(id) {
		return nil
	}
	self := n.raftID.Load()
	if n.IsLeader() && id == self && len(n.members.list()) > 1 {
		// A leader hands off first; the new leader removes it.
		if err := n.TransferLeadership(ctx); err != nil {
			return fmt.Errorf("remove raft member %s (this leader): %w", hexID(id), err)
		}
	}
	if !n.IsLeader() {
		if forwarded {
			return ErrNotLeader
		}
		client, err := n.leaderClient(ctx)
		if err != nil {
			return fmt.Errorf("remove raft member %s: %w", hexID(id), err)
		}
		if _, err := client.Leave(forwardedContext(ctx), &api.LeaveRaftRequest{RaftId: id}, callOptions()...); err != nil {
			// Removing itself, this node may apply the removal (and close
			// its connections) before the leader's answer arrives.
			if n.members.isRemoved(id) || (id == self && errors.Is(n.Err(), ErrMemberRemoved)) {
				return nil
			}
			return fmt.Errorf("remove raft member %s via the leader: %w", hexID(id), fromStatus(err))
		}
		return nil
	}
	if !n.tryAcquireConfChange() {
		return ErrConfChangeInProgress
	}
	defer n.releaseConfChange()
	if err := n.checkRemovable(id); err != nil {
		return err
	}
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(id)}
	if err := n.proposeConfChange(ctx, cc); err != nil {
		return fmt.Errorf("remove raft member %s: %w", hexID(id), err)
	}
	return nil
}

// checkRemovable refuses a removal that would leave the group without a
// reachable quorum, or without members.
func (n *Node) checkRemovable(id uint64) error {
	members := n.Members()
	var remaining, reachable int
	found := false
	for _, m := range members {
		if m.Member.GetRaftId() == id {
			found = true
			continue
		}
		remaining++
		if m.Reachable {
			reachable++
		}
	}
	switch {
	case !found:
		return fmt.Errorf("%w: raft ID %s is not a member", ErrCannotRemove, hexID(id))
	case remaining == 0:
		return fmt.Errorf("%w: raft ID %s is the last member", ErrCannotRemove, hexID(id))
	}
	if quorum := remaining/2 + 1; reachable < quorum {
		return fmt.Errorf("%w: raft ID %s: only %d of the %d remaining members are reachable, a quorum needs %d",
			ErrCannotRemove, hexID(id), reachable, remaining, quorum)
	}
	return nil
}

// leadershipMoving tells whether err says the request reached no leader:
// this node knows none, or the member it was sent to does not lead (any
// more, or yet), which a member answers with Unavailable.
func leadershipMoving(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) || status.Code(err) == codes.Unavailable
}

// Leave removes this node from the group (through the leader; a leader hands
// off first), then stops it: Err is ErrMemberRemoved afterwards. Like
// RemoveMember it tries again for a while when leadership moves.
func (n *Node) Leave(ctx context.Context) error {
	if err := n.removeMemberRetrying(ctx, n.raftID.Load()); err != nil {
		return fmt.Errorf("leave raft group: %w", err)
	}
	// The removal is committed; stop now rather than wait to apply it.
	select {
	case n.removedc <- struct{}{}:
	default:
	}
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("leave raft group: removed, but stopping: %w", ctx.Err())
	}
}

// TransferLeadership hands leadership to the most up-to-date reachable
// member and returns once another member leads.
func (n *Node) TransferLeadership(ctx context.Context) error {
	if !n.IsLeader() {
		return fmt.Errorf("transfer leadership: %w", ErrNotLeader)
	}
	self := n.raftID.Load()
	retry := time.NewTicker(2 * n.cfg.electionTimeout())
	defer retry.Stop()
	tick := time.NewTicker(n.cfg.TickInterval)
	defer tick.Stop()
	for {
		target, err := n.transferTarget(ctx)
		if err != nil {
			return fmt.Errorf("transfer leadership: %w", err)
		}
		if err := n.do(ctx, func() { n.rn.TransferLeader(target) }); err != nil {
			return fmt.Errorf("transfer leadership: %w", err)
		}
		n.log.Info("transferring leadership", "to", hexID(target))
	wait:
		for {
			if lead := n.board.get().LeaderID; lead != 0 && lead != self {
				return nil
			}
			select {
			case <-tick.C:
			case <-retry.C:
				if !n.IsLeader() {
					continue // no leader yet; an election is running
				}
				break wait // raft abandoned the transfer; try again
			case <-ctx.Done():
				return fmt.Errorf("transfer leadership to %s: %w", hexID(target), ctx.Err())
			case <-n.done:
				return fmt.Errorf("transfer leadership: %w", n.stoppedErr())
			}
		}
	}
}

// transferTarget picks the reachable voter, other than this node, whose log
// matches the leader's furthest.
func (n *Node) transferTarget(ctx context.Context) (uint64, error) {
	self := n.raftID.Load()
	var target, best uint64
	err := n.do(ctx, func() {
		for id, pr := range n.rn.Status().Progress {
			if id == self || pr.IsLearner || !n.transport.reachable(id) {
				continue
			}
			if target == 0 || pr.Match > best {
				target, best = id, pr.Match
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if target == 0 {
		return 0, errors.New("no reachable member to hand leadership to")
	}
	return target, nil
}

// proposeConfChange proposes cc on the leader and waits until it is applied
// here. Raft turns a membership change into an empty entry while an earlier
// one may still be unapplied, which is also the case on a new leader until
// it has applied the entries it inherited; a change raft did not take is
// proposed again a tick later, until ctx ends.
func (n *Node) proposeConfChange(ctx context.Context, cc *raftpb.ConfChange) error {
	for {
		err := n.proposeConfChangeOnce(ctx, cc)
		if !errors.Is(err, errConfChangeNotTaken) {
			return err
		}
		select {
		case <-time.After(n.cfg.TickInterval):
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrConfChangeInProgress, ctx.Err())
		case <-n.done:
			return n.stoppedErr()
		}
	}
}

func (n *Node) proposeConfChangeOnce(ctx context.Context, cc *raftpb.ConfChange) error {
	id, ch := n.waits.register()
	cc.Id = new(id)
	var proposeErr error
	err := n.do(ctx, func() {
		if n.rn.BasicStatus().RaftState != raft.StateLeader {
			proposeErr = ErrNotLeader
			return
		}
		if err := n.rn.ProposeConfChange(cc); err != nil {
			proposeErr = err
			if errors.Is(err, raft.ErrProposalDropped) {
				proposeErr = ErrProposalDropped
			}
			return
		}
		n.pendingCC = id
	})
	if err == nil {
		err = proposeErr
	}
	if err != nil {
		n.waits.cancel(id)
		return err
	}
	select {
	case r := <-ch:
		return r.err
	case <-ctx.Done():
		n.waits.cancel(id)
		return ctx.Err()
	case <-n.done:
		n.waits.cancel(id)
		return n.stoppedErr()
	}
}

func (n *Node) acquireConfChange(ctx context.Context) error {
	select {
	case n.confSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stoppedErr()
	}
}

func (n *Node) tryAcquireConfChange() bool {
	select {
	case n.confSem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (n *Node) releaseConfChange() { <-n.confSem }

// leaderClient returns a Raft client connected to the current leader.
func (n *Node) leaderClient(ctx context.Context) (api.RaftClient, error) {
	lead := n.board.get().LeaderID
	if lead == 0 {
		return nil, ErrNoLeader
	}
	conn, err := n.transport.conn(ctx, lead)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach leader %s: %w", ErrNoLeader, hexID(lead), err)
	}
	return api.NewRaftClient(conn), nil
}
