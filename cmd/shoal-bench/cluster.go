package main

// This file owns the test bed the cluster benchmarks share: three managers in this process and
// simulated worker nodes joined to them, all ready.

import (
	"context"
	"fmt"
	"sync"

	"github.com/shoal/shoal/orchestrator/manager/managertest"
	"github.com/shoal/shoal/orchestrator/store"
)

// benchCluster is a running 3-manager cluster with simulated nodes.
type benchCluster struct {
	*managertest.Cluster
	leader     *managertest.Member
	stopAgents context.CancelFunc
	agents     sync.WaitGroup
}

// startBenchCluster starts 3 managers in dir and nodes simulated nodes joined as workers, and
// waits until every node is ready; joined, when set, is called once they joined. Close stops
// it all.
func startBenchCluster(ctx context.Context, dir string, nodes int, opts managertest.Options, joined func()) (*benchCluster, error) {
	c, err := managertest.Start(ctx, dir, 3, opts)
	if err != nil {
		return nil, err
	}
	bc := &benchCluster{Cluster: c}
	if bc.leader, err = c.WaitLeader(ctx); err != nil {
		c.Close()
		return nil, err
	}
	var addrs []string
	for _, m := range c.Members() {
		addrs = append(addrs, m.Addr())
	}
	var token string
	bc.leader.Store().View(func(tx store.ReadTx) {
		if cs := tx.Clusters(); len(cs) > 0 {
			token = cs[0].RootCa.GetJoinTokens().GetWorker()
		}
	})
	if token == "" {
		c.Close()
		return nil, fmt.Errorf("the cluster has no worker join token")
	}
	var actx context.Context
	actx, bc.stopAgents = context.WithCancel(ctx)
	if err := startSimNodes(actx, &bc.agents, dir, addrs, token, nodes); err != nil {
		bc.Close()
		return nil, err
	}
	if joined != nil {
		joined()
	}
	if err := waitReadyNodes(ctx, c, nodes); err != nil {
		bc.Close()
		return nil, err
	}
	return bc, nil
}

// Close stops the simulated nodes, then the managers.
func (bc *benchCluster) Close() {
	bc.stopAgents()
	bc.agents.Wait()
	bc.Cluster.Close()
}
