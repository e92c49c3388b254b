package e2e

// Process-level tests of the manager cluster: replication through any
// manager, leader failover, restart of every manager after SIGKILL.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

// fastRaft keeps elections quick on loopback.
var fastRaft = []string{"--raft-tick", "50ms", "--election-tick", "10", "--dispatcher-heartbeat", "1s"}

func TestManagersReplicateAndFailOver(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d managers", n), func(t *testing.T) {
			c := newCluster(t, fastRaft...)
			c.initManagers(n)

			// A write through every manager is visible on all of them.
			for i := 1; i <= n; i++ {
				if err := c.setLabel(ctxT(t, 10*time.Second), i, "node-1", fmt.Sprintf("via-%d", i), "yes"); err != nil {
					t.Fatalf("write through node %d: %v", i, err)
				}
			}
			want := map[string]string{}
			for i := 1; i <= n; i++ {
				want[fmt.Sprintf("via-%d", i)] = "yes"
			}
			for i := 1; i <= n; i++ {
				got, err := c.labels(ctxT(t, 10*time.Second), i, "node-1")
				if err != nil {
					t.Fatalf("read through node %d: %v", i, err)
				}
				if err := hasAll(got, want); err != nil {
					t.Fatalf("node %d: %v", i, err)
				}
			}

			old, err := c.leader(1)
			if err != nil {
				t.Fatal(err)
			}
			survivor := old%n + 1
			killed := time.Now()
			c.node(old).kill()
			var elected time.Duration
			eventually(t, 30*time.Second, "a new leader", func() error {
				l, err := c.leader(survivor)
				if err != nil {
					return err
				}
				if l == old {
					return fmt.Errorf("node %d still names the dead node %d", survivor, old)
				}
				elected = time.Since(killed)
				return nil
			})
			eventually(t, 30*time.Second, "a write after failover", func() error {
				return c.setLabel(ctxT(t, 2*time.Second), survivor, "node-1", "after-failover", "yes")
			})
			t.Logf("%d managers: leader node-%d killed; new leader seen after %s, first write accepted after %s",
				n, old, elected.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
			newLeader, err := c.leader(survivor)
			if err != nil {
				t.Fatal(err)
			}

			// The old leader comes back from its state folder as a follower.
			c.start(old)
			c.waitManagers(n, n)
			want["after-failover"] = "yes"
			eventually(t, 30*time.Second, "the old leader catches up", func() error {
				got, err := c.labels(ctxT(t, 5*time.Second), old, "node-1")
				if err != nil {
					return err
				}
				return hasAll(got, want)
			})
			if l, err := c.leader(old); err != nil || l != newLeader {
				t.Fatalf("after the old leader rejoined, it names leader %d (%v); the leader was %d", l, err, newLeader)
			}
		})
	}
}

func TestAcknowledgedWritesSurviveKillingEveryManager(t *testing.T) {
	c := newCluster(t, fastRaft...)
	c.initManagers(3)

	var (
		mu    sync.Mutex
		acked = map[string]string{}
		wg    sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key, via := fmt.Sprintf("w%d-%d", w, i), 1+rand.N(3)
				wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				err := c.setLabel(wctx, via, "node-1", key, "v")
				cancel()
				if err == nil {
					mu.Lock()
					acked[key] = "v"
					mu.Unlock()
				} else if status.Code(err) == codes.Aborted {
					i-- // a version race with another writer: try the same key again
				}
			}
		}()
	}
	// Let writes flow, then kill every manager at once, writes in flight.
	eventually(t, 30*time.Second, "some acknowledged writes", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 50 {
			return fmt.Errorf("%d acknowledged", len(acked))
		}
		return nil
	})
	for i := 1; i <= 3; i++ {
		go c.node(i).kill()
	}
	for i := 1; i <= 3; i++ {
		<-c.node(i).done
	}
	stop()
	wg.Wait()
	t.Logf("%d writes acknowledged before every manager was killed", len(acked))

	for i := 1; i <= 3; i++ {
		c.start(i)
	}
	c.waitManagers(3, 3)
	for i := 1; i <= 3; i++ {
		eventually(t, 30*time.Second, fmt.Sprintf("node %d has every acknowledged write", i), func() error {
			got, err := c.labels(ctxT(t, 5*time.Second), i, "node-1")
			if err != nil {
				return err
			}
			return hasAll(got, acked)
		})
	}
}

func TestCLIShowsManagers(t *testing.T) {
	c := newCluster(t, fastRaft...)
	c.initManagers(3)
	out, err := c.shoalctl(2, "node", "ls")
	if err != nil {
		t.Fatalf("shoalctl node ls: %v\n%s", err, out)
	}
	for _, want := range []string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "node-1", "node-2", "node-3", "Leader", "Reachable", "Ready", "Active"} {
		if !contains(out, want) {
			t.Errorf("node ls lacks %q:\n%s", want, out)
		}
	}
	out, err = c.shoalctl(1, "node", "inspect", "no-such-node")
	if err == nil || !contains(out, "no-such-node") {
		t.Errorf("inspect of an unknown node: err %v, output %q", err, out)
	}
	if _, err := c.control(1).ListNodes(ctxT(t, 5*time.Second), &api.ListNodesRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestFollowerCatchesUpFromSnapshot(t *testing.T) {
	c := newCluster(t, append(fastRaft, "--snapshot-interval", "40", "--log-entries-for-slow-followers", "5")...)
	c.initManagers(3)
	leader, err := c.leader(1)
	if err != nil {
		t.Fatal(err)
	}
	follower := leader%3 + 1
	c.node(follower).kill()

	// Far more entries than one snapshot interval: the log the follower
	// needs is compacted away on the others.
	want := map[string]string{}
	writer := (follower % 3) + 1
	for i := 0; i < 150; i++ {
		key := fmt.Sprintf("k%d", i)
		if err := c.setLabel(ctxT(t, 10*time.Second), writer, "node-1", key, "v"); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		want[key] = "v"
	}

	logBefore := len(c.node(follower).log.String())
	c.start(follower)
	c.waitManagers(3, 3)
	eventually(t, 60*time.Second, "the follower has every write", func() error {
		got, err := c.labels(ctxT(t, 5*time.Second), follower, "node-1")
		if err != nil {
			return err
		}
		return hasAll(got, want)
	})
	if !contains(c.node(follower).log.String()[logBefore:], "restored raft snapshot") {
		t.Fatalf("node %d caught up without installing a snapshot from the leader", follower)
	}
}
