package raft

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestLeaderTermFence: a proposal made under a leader term is applied while
// that term lasts, refused at once by a node that does not lead in it, and
// skipped by every member when it reaches the log in a later term (what a
// deposed leader's components proposed, forwarded to the new leader).
func TestLeaderTermFence(t *testing.T) {
	c := newTestCluster(t, 3, testConfig())
	leader := c.waitLeader()
	term := c.node(leader).Status().Term
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	if _, err := c.node(leader).Propose(WithLeaderTerm(ctx, term), []byte("in-term")); err != nil {
		t.Fatalf("proposal in the leader's own term: %v", err)
	}
	follower := (leader + 1) % 3
	if _, err := c.node(follower).Propose(WithLeaderTerm(ctx, term), []byte("from-follower")); !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("proposal with a leader term through a follower: %v, want ErrLeadershipLost", err)
	}

	// The old leader goes; the proposal that was on its way when it lost
	// its term reaches the new leader through a member that forwards it.
	c.stop(leader)
	rest := c.running()
	next := c.waitLeader(rest...)
	if st := c.node(next).Status(); st.Term <= term {
		t.Fatalf("new leader's term %d, want above %d", st.Term, term)
	}
	via := rest[0]
	if via == next {
		via = rest[1]
	}
	n := c.node(via)
	id, ch := n.waits.register()
	n.propc <- proposal{id: id, payload: []byte("stale"), leaderTerm: term}
	select {
	case r := <-ch:
		if !errors.Is(r.err, ErrLeadershipLost) {
			t.Fatalf("stale-term proposal: result %v, error %v; want ErrLeadershipLost", r.val, r.err)
		}
	case <-ctx.Done():
		t.Fatal("stale-term proposal: no answer")
	}
	c.mustPropose(via, "after")
	got := c.waitConverged(2, rest...)
	if slices.ContainsFunc(got, func(p string) bool { return p == "stale" || p == "from-follower" }) {
		t.Fatalf("state machines applied a fenced proposal: %v", got)
	}
	if !slices.Contains(got, "in-term") || !slices.Contains(got, "after") {
		t.Fatalf("state machines hold %v, want in-term and after", got)
	}
}
