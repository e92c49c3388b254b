package main

// This file measures committed store transactions per second on an
// in-process 3-manager cluster, and runs the stability soak on one.

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/manager/managertest"
	"github.com/shoal/shoal/orchestrator/store"
)

type throughputResult struct {
	clients   int
	committed int64
	failed    int64
	elapsed   time.Duration
	p50, p99  time.Duration
}

func (r throughputResult) perSecond() float64 { return float64(r.committed) / r.elapsed.Seconds() }

// growStore makes every transaction create a new object instead of
// updating the client's own (--workload create): the store grows without
// bound, which measures how raft copes as snapshots grow.
var growStore bool

// load runs clients that each commit one-object transactions through one
// manager (client i through manager i mod 3) until ctx ends. Each client owns one node object and
// updates it again and again (as agents update their status), so the store
// stays the size of a real cluster however long the run.
func load(ctx context.Context, c *managertest.Cluster, clients int, run string) (throughputResult, error) {
	var (
		committed, failed atomic.Int64
		mu                sync.Mutex
		latencies         []time.Duration
		wg                sync.WaitGroup
	)
	members := c.Members()
	ids := make([]string, clients)
	if err := members[0].Store().Update(ctx, func(tx store.Tx) error {
		for i := range ids {
			ids[i] = fmt.Sprintf("%s-client-%d", run, i)
			n := &api.Node{Id: ids[i], Spec: &api.NodeSpec{Annotations: &api.Annotations{Labels: map[string]string{}}}}
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return throughputResult{}, fmt.Errorf("create the clients' objects: %w", err)
	}
	// Every manager has applied the objects before the clock starts.
	for _, m := range members {
		if err := m.Store().ViewLinearizable(ctx, func(store.ReadTx) {}); err != nil {
			return throughputResult{}, fmt.Errorf("wait for the clients' objects: %w", err)
		}
	}
	start := time.Now()
	for i := range clients {
		wg.Go(func() {
			var mine []time.Duration
			for seq := 0; ctx.Err() == nil; seq++ {
				// A client talks to one manager, as a Control API
				// client does; clients are spread evenly over them.
				s := members[i%len(members)].Store()
				if s == nil {
					continue
				}
				t0 := time.Now()
				err := s.Update(ctx, func(tx store.Tx) error {
					if growStore {
						id := fmt.Sprintf("%s-%d", ids[i], seq)
						return tx.Create(&api.Node{Id: id, Description: &api.NodeDescription{Hostname: id}})
					}
					n := tx.Node(ids[i])
					if n == nil {
						return fmt.Errorf("object %s is gone", ids[i])
					}
					if n.Spec.Annotations.Labels == nil {
						n.Spec.Annotations.Labels = map[string]string{}
					}
					n.Spec.Annotations.Labels["seq"] = strconv.Itoa(seq)
					return tx.Update(n)
				})
				if err != nil {
					if ctx.Err() == nil {
						if failed.Add(1) <= 3 {
							fmt.Printf("%s: client %d: transaction failed: %v\n", run, i, err)
						}
					}
					continue
				}
				mine = append(mine, time.Since(t0))
				committed.Add(1)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := throughputResult{clients: clients, committed: committed.Load(), failed: failed.Load(), elapsed: time.Since(start)}
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		r.p50, r.p99 = latencies[n/2], latencies[n*99/100]
	}
	return r, nil
}

func measureThroughput(ctx context.Context, o raftOptions) ([]throughputResult, error) {
	dir, err := os.MkdirTemp("", "shoal-bench-throughput")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c, err := managertest.Start(ctx, dir, 3, managertest.Options{})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var out []throughputResult
	for _, clients := range o.levels {
		rctx, cancel := context.WithTimeout(ctx, o.duration)
		r, err := load(rctx, c, clients, fmt.Sprintf("t%d", clients))
		cancel()
		if err != nil {
			return nil, err
		}
		fmt.Printf("throughput: %3d clients: %8.0f tx/s (p50 %s, p99 %s, %d failed)\n",
			clients, r.perSecond(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.failed)
		out = append(out, r)
	}
	return out, nil
}

type soakResult struct {
	duration      time.Duration
	clients       int
	committed     int64
	leaderChanges int
	terms         string
}

// soak runs a full write load and counts leader changes seen by any member.
func soak(ctx context.Context, o raftOptions) (soakResult, error) {
	res := soakResult{duration: o.soak, clients: o.soakUsers}
	dir, err := os.MkdirTemp("", "shoal-bench-soak")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	c, err := managertest.Start(ctx, dir, 3, managertest.Options{})
	if err != nil {
		return res, err
	}
	defer c.Close()
	first, err := c.WaitLeader(ctx)
	if err != nil {
		return res, err
	}
	startTerm := first.Manager().Raft().Status().Term

	lctx, cancel := context.WithTimeout(ctx, o.soak)
	defer cancel()
	// Sample every member's view of (term, leader) and count each change.
	var changes atomic.Int64
	var watchers sync.WaitGroup
	watchers.Go(func() {
		last := first.Manager().Raft().Status()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
			for _, m := range c.Members() {
				mgr := m.Manager()
				if mgr == nil {
					continue
				}
				st := mgr.Raft().Status()
				if st.Term > last.Term || (st.Term == last.Term && st.LeaderID != 0 && st.LeaderID != last.LeaderID) {
					changes.Add(1)
					fmt.Printf("soak: leader change seen by manager %d: term %d leader %x -> term %d leader %x\n",
						m.Index, last.Term, last.LeaderID, st.Term, st.LeaderID)
					last = st
				}
			}
		}
	})
	r, err := load(lctx, c, o.soakUsers, "soak")
	if err != nil {
		return res, err
	}
	watchers.Wait()
	res.committed = r.committed
	res.leaderChanges = int(changes.Load())
	endTerm := uint64(0)
	if l := c.Leader(); l != nil {
		endTerm = l.Manager().Raft().Status().Term
	}
	res.terms = fmt.Sprintf("%d → %d", startTerm, endTerm)
	fmt.Printf("soak: %s at %d clients: %d committed (%.0f tx/s), %d leader changes, term %s\n",
		o.soak, o.soakUsers, r.committed, r.perSecond(), res.leaderChanges, res.terms)
	return res, nil
}
