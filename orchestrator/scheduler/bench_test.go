package scheduler

import (
	"context"
	"fmt"
	"testing"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

const (
	benchNodes = 1000
	benchTasks = 10000
)

// benchCluster is 1,000 nodes of 16 CPUs and 64 GiB over 3 zones, and
// 10,000 pending tasks of one service reserving 0.1 CPU and 128 MiB each.
func benchCluster() ([]*api.Node, []*api.Task) {
	nodes := make([]*api.Node, 0, benchNodes)
	for i := range benchNodes {
		nodes = append(nodes, node(fmt.Sprintf("node-%04d", i), withResources(16, 64*gib), withLabel("zone", fmt.Sprint(i%3))))
	}
	pending := make([]*api.Task, 0, benchTasks)
	for i := 1; i <= benchTasks; i++ {
		pending = append(pending, task("web", uint64(i), reserving(0.1, 128<<20), constrained("node.role==worker")))
	}
	return nodes, pending
}

func reportPlacements(b *testing.B, placed int) {
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
}

// BenchmarkPlan is the decision alone: 10,000 tasks on 1,000 nodes.
func BenchmarkPlan(b *testing.B) {
	nodes, pending := benchCluster()
	placed := 0
	b.ReportAllocs()
	for b.Loop() {
		r := Plan(nodes, nil, pending)
		if len(r.Assigned) != benchTasks {
			b.Fatalf("placed %d of %d", len(r.Assigned), benchTasks)
		}
		placed += len(r.Assigned)
	}
	reportPlacements(b, placed)
}

// BenchmarkPlanSpread is BenchmarkPlan with a spread over three zones.
func BenchmarkPlanSpread(b *testing.B) {
	nodes, pending := benchCluster()
	for _, t := range pending {
		spreadOver("node.labels.zone")(t)
	}
	placed := 0
	for b.Loop() {
		placed += len(Plan(nodes, nil, pending).Assigned)
	}
	reportPlacements(b, placed)
}

// BenchmarkPass is what the running scheduler does with the same load:
// plan on its view and commit the 10,000 assignments to the store, in
// chunks of maxTasksPerUpdate (storetest commits without raft).
func BenchmarkPass(b *testing.B) {
	nodes, pending := benchCluster()
	ctx := context.Background()
	placed := 0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := storetest.New()
		err := st.Update(ctx, func(tx store.Tx) error {
			for _, n := range nodes {
				if err := tx.Create(n); err != nil {
					return err
				}
			}
			for _, t := range pending {
				if err := tx.Create(t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		s := New(st, nil)
		st.View(s.load)
		b.StartTimer()

		if s.pass(ctx) {
			b.Fatal("the pass dropped decisions")
		}
		placed += benchTasks - len(s.view.pending)
	}
	reportPlacements(b, placed)
}
