package raft

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// counterSM is the trivial state machine of the benchmark: it counts.
type counterSM struct{ n atomic.Uint64 }

func (s *counterSM) Apply(uint64, []byte) any { return s.n.Add(1) }
func (s *counterSM) Snapshot() ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, s.n.Load()), nil
}
func (s *counterSM) Restore(_ uint64, state []byte) error {
	s.n.Store(binary.BigEndian.Uint64(state))
	return nil
}

// BenchmarkPropose measures committed proposals per second on a 3-node
// in-process cluster over loopback gRPC, with 1, 16 and 64 concurrent
// proposers on the leader. Throughput growing with concurrency shows that
// concurrent proposals share a Ready, and so one fsync.
func BenchmarkPropose(b *testing.B) {
	for _, proposers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
			cfg := testConfig()
			cfg.TickInterval = 0 // default 100ms
			c := startTestCluster(&testCluster{t: b, cfg: cfg, logger: testLogger(b), newSM: func() StateMachine { return &counterSM{} }}, 3)
			leader := c.node(c.waitLeader())
			payload := make([]byte, 128)
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range proposers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := leader.Propose(ctx, payload); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
