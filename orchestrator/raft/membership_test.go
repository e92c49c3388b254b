package raft

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitStopped waits for the node in slot i to stop on its own and returns
// its Err.
func (c *testCluster) waitStopped(i int) error {
	c.t.Helper()
	n := c.node(i)
	eventually(c.t, fmt.Sprintf("node %d to stop", i), func() bool {
		select {
		case <-n.Done():
			return true
		default:
			return false
		}
	})
	c.nodes[i].srv.set(nil)
	c.nodes[i].node = nil
	return n.Err()
}

// TestRemoveMember: a removed member stops with ErrMemberRemoved and cannot
// restart; the group goes on; a removal that would leave no reachable quorum
// is refused, and so is removing the last member.
func TestRemoveMember(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	leader := c.waitLeader()
	c.mustPropose(leader, "one")
	victim := (leader + 1) % 3
	keep := (leader + 2) % 3
	victimID := c.node(victim).Status().RaftID

	if err := c.node(leader).RemoveMember(ctxT(t), victimID); err != nil {
		t.Fatalf("remove follower: %v", err)
	}
	if err := c.waitStopped(victim); !errors.Is(err, ErrMemberRemoved) {
		t.Fatalf("removed node stopped with %v, want ErrMemberRemoved", err)
	}
	c.mustPropose(keep, "two")
	c.waitConverged(2, leader, keep)
	if got := len(c.node(leader).Members()); got != 2 {
		t.Fatalf("leader lists %d members after the removal, want 2", got)
	}
	if err := c.node(keep).RemoveMember(ctxT(t), victimID); err != nil {
		t.Fatalf("removing an already removed member: %v, want nil", err)
	}
	if err := c.create(victim).Restart(ctxT(t)); !errors.Is(err, ErrMemberRemoved) {
		t.Fatalf("restart of a removed member: %v, want ErrMemberRemoved", err)
	}
	c.nodes[victim].node.Stop()
	c.nodes[victim].node = nil

	// A third member joins in a new slot, then goes down.
	third := c.addSlot()
	c.join(third, keep)
	c.mustPropose(third, "three")
	c.waitConverged(3, leader, keep, third)
	leader = c.waitLeader()
	others := []int{}
	for _, i := range []int{keep, third} {
		if i != leader {
			others = append(others, i)
		}
	}
	up, down := others[0], others[1]
	downID := c.node(down).Status().RaftID
	c.stop(down)
	eventually(t, "leader to see the stopped member unreachable", func() bool {
		for _, m := range c.node(leader).Members() {
			if m.Member.GetRaftId() == downID {
				return !m.Reachable
			}
		}
		return false
	})
	upID := c.node(up).Status().RaftID
	// Removing the live follower would leave {leader, down}: 1 reachable of 2.
	for _, via := range []int{leader, up} {
		err := c.node(via).RemoveMember(ctxT(t), upID)
		if !errors.Is(err, ErrCannotRemove) {
			t.Fatalf("removing a member that breaks quorum via node %d: %v, want ErrCannotRemove", via, err)
		}
		t.Logf("refused as expected via node %d: %v", via, err)
	}
	// Removing the dead one leaves {leader, up}: both reachable.
	if err := c.node(up).RemoveMember(ctxT(t), downID); err != nil {
		t.Fatalf("remove the stopped member via a follower: %v", err)
	}
	c.mustPropose(up, "four")
	c.waitConverged(4, leader, up)
}

// TestRemoveLastMember: the only member cannot be removed.
func TestRemoveLastMember(t *testing.T) {
	c := newTestCluster(t, 1, testConfig())
	id := c.node(0).Status().RaftID
	if err := c.node(0).RemoveMember(ctxT(t), id); !errors.Is(err, ErrCannotRemove) {
		t.Fatalf("remove the last member: %v, want ErrCannotRemove", err)
	}
	if err := c.node(0).Leave(ctxT(t)); !errors.Is(err, ErrCannotRemove) {
		t.Fatalf("last member leaves: %v, want ErrCannotRemove", err)
	}
	c.mustPropose(0, "still-here")
}

// TestLeave: a follower leaves, then the leader leaves (handing off first);
// the last member goes on alone.
func TestLeave(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	leader := c.waitLeader()
	follower := (leader + 1) % 3
	last := (leader + 2) % 3
	c.mustPropose(leader, "one")
	c.waitConverged(1)

	if err := c.node(follower).Leave(ctxT(t)); err != nil {
		t.Fatalf("follower leaves: %v", err)
	}
	if err := c.waitStopped(follower); !errors.Is(err, ErrMemberRemoved) {
		t.Fatalf("follower stopped with %v after leaving, want ErrMemberRemoved", err)
	}
	eventually(t, "leader to see the remaining members reachable", func() bool {
		for _, m := range c.node(leader).Members() {
			if !m.Reachable {
				return false
			}
		}
		return true
	})
	if err := c.node(leader).Leave(ctxT(t)); err != nil {
		t.Fatalf("leader leaves: %v", err)
	}
	if err := c.waitStopped(leader); !errors.Is(err, ErrMemberRemoved) {
		t.Fatalf("old leader stopped with %v after leaving, want ErrMemberRemoved", err)
	}
	c.waitLeader(last)
	c.mustPropose(last, "two")
	if got := c.nodes[last].sm.payloads(); len(got) != 2 {
		t.Fatalf("last member holds %v", got)
	}
	if got := c.node(last).Members(); len(got) != 1 {
		t.Fatalf("last member lists %d members, want 1", len(got))
	}
}

// TestLeaderLeavesOnSlowDisk: a leader that leaves asks the member it
// handed off to for its removal as soon as it sees that member lead. When
// the other members' disks are slow, that member's first append reaches the
// old leader long before the new leader's own write ends, and the new
// leader may not have applied what it inherited (the entry proposed just
// before the leave); the request must still succeed.
func TestLeaderLeavesOnSlowDisk(t *testing.T) {
	cfg := testConfig()
	var fast atomic.Uint64 // the raft ID whose disk is fast
	cfg.beforeWrite = func(id uint64) {
		if f := fast.Load(); f != 0 && f != id {
			time.Sleep(5 * cfg.TickInterval)
		}
	}
	for round := range 3 {
		fast.Store(0)
		c := newTestCluster(t, 3, cfg)
		leader := c.waitLeader()
		fast.Store(c.node(leader).Status().RaftID)
		c.mustPropose(leader, fmt.Sprintf("round-%d", round))
		if err := c.node(leader).Leave(ctxT(t)); err != nil {
			t.Fatalf("round %d: leader leaves: %v", round, err)
		}
		if err := c.waitStopped(leader); !errors.Is(err, ErrMemberRemoved) {
			t.Fatalf("round %d: old leader stopped with %v after leaving, want ErrMemberRemoved", round, err)
		}
		c.stopAll()
	}
}

// TestMembershipChangeThroughANewLeader: a member that has just become
// leader, and does not know yet that the entries it inherited are committed,
// takes a membership change at once (it waits until raft would accept one)
// instead of refusing it as another change in progress.
func TestMembershipChangeThroughANewLeader(t *testing.T) {
	cfg := testConfig()
	var slow atomic.Uint64 // the raft ID whose disk is slow
	cfg.beforeWrite = func(id uint64) {
		if id == slow.Load() {
			time.Sleep(5 * cfg.TickInterval)
		}
	}
	// The setup needs the test to see the new leader before it learns that
	// what it inherited is committed; a stalled test goroutine can miss
	// that window, and then the setup runs again.
	for attempt := 1; ; attempt++ {
		slow.Store(0)
		if membershipChangeThroughANewLeader(t, cfg, &slow) {
			return
		}
		if attempt == 5 {
			t.Fatal("in 5 attempts the new leader had always applied what it inherited before the test saw it lead")
		}
		t.Logf("attempt %d: the new leader applied what it inherited before the test saw it lead; again", attempt)
	}
}

// membershipChangeThroughANewLeader runs one attempt on a new cluster; false
// if the new leader was not behind when the test saw it lead.
func membershipChangeThroughANewLeader(t *testing.T, cfg Config, slow *atomic.Uint64) bool {
	c := newTestCluster(t, 3, cfg)
	defer c.stopAll()
	a := c.waitLeader()
	b, lag := (a+1)%3, (a+2)%3
	c.mustPropose(a, "one")
	c.waitConverged(1)
	aID, bID, lagID := c.node(a).Status().RaftID, c.node(b).Status().RaftID, c.node(lag).Status().RaftID

	// The lagging member gets nothing from the leader; b gets the next
	// entry but never a commit index that covers it.
	next := c.node(a).Status().Commit + 1
	c.setDrop(func(from, to uint64, m *raftpb.Message) bool {
		if from != aID || m == nil {
			return false
		}
		switch m.GetType() {
		case raftpb.MsgApp, raftpb.MsgHeartbeat, raftpb.MsgSnap:
			return to == lagID || (to == bID && m.GetCommit() >= next)
		}
		return false
	})
	c.mustPropose(a, "two")
	slow.Store(bID)
	if err := c.node(a).TransferLeadership(ctxT(t)); err != nil {
		t.Fatalf("hand leadership to %d: %v", b, err)
	}
	eventually(t, "the new leader to lead", func() bool { return c.node(b).IsLeader() })
	if c.node(b).Status().Applied >= next {
		return false
	}
	if err := c.node(b).RemoveMember(ctxT(t), lagID); err != nil {
		t.Fatalf("remove a member through a leader that has not applied what it inherited: %v", err)
	}
	c.heal()
	slow.Store(0)
	if got := len(c.node(b).Members()); got != 2 {
		t.Fatalf("%d members after the removal, want 2", got)
	}
	return true
}

// TestJoinIsIdempotent: joining again with the same node ID and address
// returns the same raft ID, through the leader or a follower; another
// address is refused while the node is a member.
func TestJoinIsIdempotent(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	leader := c.waitLeader()
	follower := (leader + 1) % 3
	member := c.nodes[follower]
	wantID := c.node(follower).Status().RaftID
	for _, via := range []int{leader, follower, (leader + 2) % 3} {
		conn, err := insecureDial(context.Background(), c.nodes[via].addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := api.NewRaftClient(conn)
		resp, err := client.Join(ctxT(t), &api.JoinRaftRequest{NodeId: member.name, Addr: member.addr})
		if err != nil {
			t.Fatalf("re-join via node %d: %v", via, err)
		}
		if resp.GetRaftId() != wantID || len(resp.GetMembers()) != 3 {
			t.Fatalf("re-join via node %d: raft ID %x with %d members, want %x with 3", via, resp.GetRaftId(), len(resp.GetMembers()), wantID)
		}
		_, err = client.Join(ctxT(t), &api.JoinRaftRequest{NodeId: member.name, Addr: "127.0.0.1:1"})
		if status.Code(err) != codes.AlreadyExists {
			t.Fatalf("join with another address via node %d: %v, want AlreadyExists", via, err)
		}
		_, err = client.Join(ctxT(t), &api.JoinRaftRequest{NodeId: "", Addr: "127.0.0.1:1"})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("join without node ID via node %d: %v, want InvalidArgument", via, err)
		}
	}
	if got := len(c.node(leader).Members()); got != 3 {
		t.Fatalf("%d members after re-joins, want 3", got)
	}
}

// TestConfChangeOneAtATime: a removal while another membership change holds
// the slot is refused with ErrConfChangeInProgress.
func TestConfChangeOneAtATime(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	leader := c.waitLeader()
	if !c.node(leader).tryAcquireConfChange() {
		t.Fatal("conf change slot busy in an idle group")
	}
	id := c.node((leader + 1) % 3).Status().RaftID
	err := c.node(leader).RemoveMember(ctxT(t), id)
	c.node(leader).releaseConfChange()
	if !errors.Is(err, ErrConfChangeInProgress) {
		t.Fatalf("remove during another change: %v, want ErrConfChangeInProgress", err)
	}
	// Through a follower the leader's refusal keeps its identity.
	c.node(leader).tryAcquireConfChange()
	err = c.node((leader+2)%3).RemoveMember(ctxT(t), id)
	c.node(leader).releaseConfChange()
	if !errors.Is(err, ErrConfChangeInProgress) {
		t.Fatalf("remove via a follower during another change: %v, want ErrConfChangeInProgress", err)
	}
}

// TestMembersReachability: a stopped member turns unreachable; the rest stay
// reachable, and exactly one member is the leader.
func TestMembersReachability(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	leader := c.waitLeader()
	down := (leader + 1) % 3
	downID := c.node(down).Status().RaftID
	eventually(t, "all members reachable", func() bool {
		for _, m := range c.node(leader).Members() {
			if !m.Reachable {
				return false
			}
		}
		return true
	})
	c.stop(down)
	eventually(t, "stopped member unreachable, the others reachable", func() bool {
		leaders := 0
		for _, m := range c.node(leader).Members() {
			if m.Leader {
				leaders++
			}
			if m.Reachable == (m.Member.GetRaftId() == downID) {
				return false
			}
		}
		return leaders == 1
	})
}
