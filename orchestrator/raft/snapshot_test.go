package raft

import (
	"fmt"
	"testing"
)

// TestSnapshotCatchUp: a follower cut off while the leader compacts past its
// log catches up through a snapshot once the link heals.
func TestSnapshotCatchUp(t *testing.T) {
	cfg := testConfig()
	cfg.SnapshotInterval = 50
	cfg.LogEntriesForSlowFollowers = 5
	c := newTestCluster(t, 3, cfg)
	leader := c.waitLeader()
	c.mustPropose(leader, "first")
	c.waitConverged(1)

	lagger := (leader + 1) % 3
	lagApplied := c.node(lagger).Status().Applied
	c.isolate(lagger)
	for i := range 200 {
		c.mustPropose(leader, fmt.Sprintf("v%d", i))
	}
	first, err := c.node(leader).mem.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= lagApplied+1 {
		t.Fatalf("leader's log starts at %d; it was not compacted past the lagging follower's %d", first, lagApplied)
	}
	if n := c.nodes[lagger].sm.restoreCount(); n != 0 {
		t.Fatalf("follower restored %d snapshots before the heal", n)
	}

	c.heal()
	got := c.waitConverged(201)
	if len(got) != 201 || got[0] != "first" || got[200] != "v199" {
		t.Fatalf("after catch-up: %d entries, first %q last %q", len(got), got[0], got[len(got)-1])
	}
	if n := c.nodes[lagger].sm.restoreCount(); n == 0 {
		t.Fatalf("lagging follower caught up without restoring a snapshot")
	}
	// The caught-up follower takes part in the group again.
	c.mustPropose(lagger, "via-lagger")
	c.waitConverged(202)
}
