package raft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRestartAllKeepsAcknowledgedWrites: every node is stopped while writes
// are in flight and restarted from disk; every Propose that returned nil is
// in every restarted state machine, and the state machines agree.
func TestRestartAllKeepsAcknowledgedWrites(t *testing.T) {
	cfg := testConfig()
	cfg.SnapshotInterval = 40 // restarts go through snapshot + replay
	cfg.LogEntriesForSlowFollowers = 10
	c := newTestCluster(t, 3, cfg)
	c.waitLeader()

	var (
		mu    sync.Mutex
		acked []string
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	nodes := []*Node{c.node(0), c.node(1), c.node(2)}
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				payload := fmt.Sprintf("w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := nodes[(w+i)%3].Propose(ctx, []byte(payload))
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, payload)
					mu.Unlock()
				} else if errors.Is(err, ErrStopped) {
					return
				}
			}
		})
	}
	eventually(t, "150 acknowledged writes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 150
	})
	c.stopAll() // mid-writes, all at once
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	want := slices.Clone(acked)
	mu.Unlock()
	t.Logf("%d writes acknowledged before the stop", len(want))

	for i := range 3 {
		c.restart(i)
	}
	c.waitLeader()
	c.mustPropose(0, "after-restart")
	var got []string
	eventually(t, "all restarted nodes to apply the post-restart write", func() bool {
		for i := range 3 {
			if !slices.Contains(c.nodes[i].sm.payloads(), "after-restart") {
				return false
			}
		}
		return true
	})
	got = c.waitConverged(len(want) + 1)
	seen := map[string]int{}
	for _, p := range got {
		seen[p]++
	}
	for _, p := range want {
		if seen[p] == 0 {
			t.Errorf("acknowledged write %q lost after restarting all nodes", p)
		}
	}
	for p, n := range seen {
		if n > 1 {
			t.Errorf("write %q applied %d times", p, n)
		}
	}
	restored := 0
	for i := range 3 {
		restored += c.nodes[i].sm.restoreCount()
	}
	t.Logf("%d entries after restart; %d of 3 nodes restored a snapshot", len(got), restored)
	if restored == 0 {
		t.Errorf("no node restored a snapshot at restart, though %d entries exceed SnapshotInterval %d", len(got), cfg.SnapshotInterval)
	}
}

// TestRestartFromSnapshot: a restarted node restores its snapshot and
// re-applies exactly the entries after it.
func TestRestartFromSnapshot(t *testing.T) {
	cfg := testConfig()
	cfg.SnapshotInterval = 10
	cfg.LogEntriesForSlowFollowers = 3
	c := newTestCluster(t, 1, cfg)
	for i := range 35 {
		c.mustPropose(0, fmt.Sprintf("v%d", i))
	}
	before := c.nodes[0].sm.payloads()
	c.stop(0)
	c.restart(0)
	sm := c.nodes[0].sm
	eventually(t, "restarted node to re-apply its log", func() bool {
		return slices.Equal(sm.payloads(), before)
	})
	sm.mu.Lock()
	restores, at := sm.restores, sm.restoreIndex
	sm.mu.Unlock()
	if restores != 1 || at == 0 {
		t.Fatalf("restart restored %d snapshots (last at %d), want 1", restores, at)
	}
	c.waitLeader()
	c.mustPropose(0, "after")
	if got := sm.payloads(); len(got) != 36 || got[35] != "after" {
		t.Fatalf("after restart and one more write: %v", got)
	}
}
