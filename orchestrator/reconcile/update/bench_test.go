package update

import (
	"fmt"
	"testing"

	"github.com/shoal/shoal/api"
)

// BenchmarkRollingUpdate measures rolling every replica of a service onto
// a new spec, from the spec change to COMPLETED, with an agent that starts
// and stops tasks at once: the updater's own cost and its store writes.
func BenchmarkRollingUpdate(b *testing.B) {
	for _, bc := range []struct{ replicas, parallelism uint64 }{
		{1000, 0},
		{1000, 100},
		{100, 1},
	} {
		b.Run(fmt.Sprintf("replicas=%d/parallelism=%d", bc.replicas, bc.parallelism), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e := newEnv(b)
				e.agent.batched = true
				e.seed(replicatedSpec(bc.replicas, "web:1", updateConfig(bc.parallelism, 0, 0, pause)))
				e.changeSpec(setImage("web:2"))
				svc := e.service()
				slots := dirtySlots(svc, e.tasks())
				b.StartTimer()

				e.sup.Update(e.ctx, svc, slots)
				e.waitState(api.UpdateStatus_STATE_COMPLETED)

				b.StopTimer()
				e.close()
				b.StartTimer()
			}
			b.ReportMetric(float64(bc.replicas)*float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
