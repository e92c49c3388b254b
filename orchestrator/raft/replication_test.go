package raft

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestReplication: proposals through any node, followers included, are
// applied on every state machine in the same order.
func TestReplication(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			c := newTestCluster(t, size, testConfig())
			leader := c.waitLeader()

			// One at a time through each node in turn.
			for i := range 2 * size {
				c.mustPropose(i%size, fmt.Sprintf("seq-%d", i))
			}
			// Concurrently through all nodes.
			var wg sync.WaitGroup
			for i := range size {
				wg.Go(func() {
					for j := range 10 {
						c.mustPropose(i, fmt.Sprintf("conc-%d-%d", i, j))
					}
				})
			}
			wg.Wait()

			total := 2*size + 10*size
			got := c.waitConverged(total)
			if len(got) != total {
				t.Fatalf("state machines hold %d entries, want %d: %v", len(got), total, got)
			}
			for i := range 2 * size {
				if want := fmt.Sprintf("seq-%d", i); got[i] != want {
					t.Fatalf("entry %d is %q, want %q (sequential proposals out of order)", i, got[i], want)
				}
			}

			// Every node sees every member and the same leader.
			leadID := c.node(leader).Status().RaftID
			for i := range size {
				members := c.node(i).Members()
				if len(members) != size {
					t.Fatalf("node %d lists %d members, want %d", i, len(members), size)
				}
				for j, m := range members {
					if j > 0 && members[j-1].Member.GetRaftId() >= m.Member.GetRaftId() {
						t.Fatalf("node %d: members not sorted by raft ID", i)
					}
					if m.Leader != (m.Member.GetRaftId() == leadID) {
						t.Fatalf("node %d: member %x Leader=%v, leader is %x", i, m.Member.GetRaftId(), m.Leader, leadID)
					}
				}
				lead, ok := c.node(i).Leader()
				if !ok || lead.GetRaftId() != leadID || lead.GetAddr() != c.nodes[leader].addr {
					t.Fatalf("node %d: Leader() = %v, %v; want raft ID %x at %s", i, lead.GetRaftId(), ok, leadID, c.nodes[leader].addr)
				}
			}
		})
	}
}

// TestProposeErrors: a node without a leader refuses proposals at once with
// ErrNoLeader rather than waiting for the context; a stopped node returns
// ErrStopped.
func TestProposeErrors(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	leader := c.waitLeader()
	follower := (leader + 1) % 3
	c.mustPropose(leader, "before")

	c.isolate(follower)
	eventually(t, "isolated follower to lose its leader", func() bool {
		return c.node(follower).Status().LeaderID == 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c.node(follower).Propose(ctx, []byte("x")); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("propose on a node without leader: got %v, want ErrNoLeader", err)
	}
	if err := c.node(follower).ReadBarrier(ctx); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("read barrier on a node without leader: got %v, want ErrNoLeader", err)
	}
	c.heal()
	c.waitLeader()

	n := c.node(follower)
	c.stop(follower)
	if _, err := n.Propose(ctx, []byte("y")); !errors.Is(err, ErrStopped) {
		t.Fatalf("propose on a stopped node: got %v, want ErrStopped", err)
	}
	if err := n.Err(); err != nil {
		t.Fatalf("Err after Stop = %v, want nil", err)
	}
	n.Stop() // idempotent
}

// TestLeaderFailover: when the leader stops, another is elected and
// proposals resume; the old leader restarted from disk rejoins as a follower
// and catches up.
func TestLeaderFailover(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	old := c.waitLeader()
	for i := range 10 {
		c.mustPropose(i%3, fmt.Sprintf("before-%d", i))
	}
	c.waitConverged(10)

	start := time.Now()
	c.stop(old)
	var rest []int
	for i := range 3 {
		if i != old {
			rest = append(rest, i)
		}
	}
	leader := c.waitLeader(rest...)
	t.Logf("new leader elected %v after the old one stopped (election timeout %v)", time.Since(start), c.cfg.electionTimeout())
	for i := range 10 {
		c.mustPropose(rest[i%2], fmt.Sprintf("after-%d", i))
	}
	t.Logf("proposals resumed %v after the old leader stopped", time.Since(start))

	c.restart(old)
	got := c.waitConverged(20)
	if len(got) != 20 {
		t.Fatalf("got %d entries after catch-up, want 20", len(got))
	}
	eventually(t, "restarted node to follow a leader", func() bool {
		st := c.node(old).Status()
		return st.LeaderID != 0 && !st.IsLeader
	})
	c.mustPropose(old, "through-restarted")
	c.waitConverged(21)
	t.Logf("leader after restart: slot %d (was %d before)", c.waitLeader(), leader)
}

// TestLeadershipChanges: subscribers learn when their node gains and loses
// leadership.
func TestLeadershipChanges(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	old := c.waitLeader()
	subs := make([]<-chan bool, 3)
	for i := range 3 {
		ch, cancel := c.node(i).LeadershipChanges()
		defer cancel()
		subs[i] = ch
	}
	select {
	case v := <-subs[old]:
		if !v {
			t.Fatalf("leader's new subscription got false first, want true")
		}
	case <-time.After(waitTimeout):
		t.Fatalf("leader's subscription did not get true")
	}
	c.stop(old)
	// The old leader's channel gets false, then is closed.
	var last, seen bool
	for v := range subs[old] {
		last, seen = v, true
	}
	if !seen || last {
		t.Fatalf("stopped leader's subscription: last value %v (seen %v), want false", last, seen)
	}
	var rest []int
	for i := range 3 {
		if i != old {
			rest = append(rest, i)
		}
	}
	leader := c.waitLeader(rest...)
	select {
	case v := <-subs[leader]:
		if !v {
			t.Fatalf("new leader's subscription got false, want true")
		}
	case <-time.After(waitTimeout):
		t.Fatalf("new leader's subscription got nothing")
	}
}
