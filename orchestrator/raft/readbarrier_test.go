package raft

import (
	"context"
	"slices"
	"testing"
	"time"

	raftpb "go.etcd.io/raft/v3/raftpb"
)

// TestReadBarrierOnFollower: a follower's ReadBarrier returns only once the
// follower has applied what the leader committed before the call.
func TestReadBarrierOnFollower(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	leader := c.waitLeader()
	c.mustPropose(leader, "before")
	c.waitConverged(1)
	follower := (leader + 1) % 3
	followerID := c.node(follower).Status().RaftID

	// The leader's appends (and snapshots) to the follower are lost; its
	// heartbeats and read-index answers still arrive, so the follower keeps
	// its leader but cannot get the new entry.
	c.setDrop(func(_, to uint64, m *raftpb.Message) bool {
		return to == followerID && m != nil && (m.GetType() == raftpb.MsgApp || m.GetType() == raftpb.MsgSnap)
	})
	c.mustPropose(leader, "x") // committed by the leader and the other follower
	if slices.Contains(c.nodes[follower].sm.payloads(), "x") {
		t.Fatal("follower applied x although appends to it are dropped")
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	type barrier struct {
		err      error
		payloads []string
	}
	done := make(chan barrier, 1)
	go func() {
		err := c.node(follower).ReadBarrier(ctx)
		done <- barrier{err, c.nodes[follower].sm.payloads()}
	}()
	// While the follower cannot apply x, the barrier must not return. (A
	// correct node cannot return here at all, so this wait cannot flake.)
	select {
	case b := <-done:
		t.Fatalf("ReadBarrier returned (%v) before the follower could apply x; it holds %v", b.err, b.payloads)
	case <-time.After(10 * c.cfg.electionTimeout()):
	}

	c.heal()
	b := <-done
	if b.err != nil {
		t.Fatalf("ReadBarrier: %v", b.err)
	}
	if !slices.Contains(b.payloads, "x") {
		t.Fatalf("ReadBarrier returned before x was applied: follower holds %v", b.payloads)
	}
}

// TestReadBarrierOnLeader: on the leader the barrier returns at once with
// everything applied.
func TestReadBarrierOnLeader(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	leader := c.waitLeader()
	c.mustPropose(leader, "a")
	if err := c.node(leader).ReadBarrier(ctxT(t)); err != nil {
		t.Fatalf("ReadBarrier on leader: %v", err)
	}
	st := c.node(leader).Status()
	if st.Applied < st.Commit {
		t.Fatalf("after ReadBarrier: applied %d < commit %d", st.Applied, st.Commit)
	}
}
