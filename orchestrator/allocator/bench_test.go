package allocator_test

// This file owns the allocator's benchmarks at the scale issue 4 sets: the addresses of 100,000
// new tasks of one service, and a new leader's rebuild from 100,000 tasks and bindings. Both run
// on a raft-less store that applies each transaction at once (localProposer): they measure the
// allocator and the store, not consensus. cmd/shoal-bench allocator measures the same on a
// 3-manager cluster; docs/benchmarks.md has the figures of both.
//
//	go test -run XXX -bench 'Allocate100k|Rebuild100k' -benchtime 3x -count 2 ./orchestrator/allocator

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/allocator"
	"github.com/shoal/shoal/orchestrator/reconcile"
	rt "github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/store"
)

const (
	benchTasks  = 100_000
	benchNodes  = 100
	benchNet    = "bench-net"
	benchSubnet = "198.18.0.0/15" // 131,070 usable addresses
	benchWait   = 5 * time.Minute // gives up a benchmark that hangs
)

// BenchmarkAllocate100k times an allocator started on a store holding one service of 100,000
// replicas on a /15 and its 100,000 NEW tasks, until every task is PENDING with its address: a
// rebuild (of nothing), one service round planning 100,001 bindings (the VIP too) and the
// commits of the bindings and the 100,000 task updates, 5,000 writes per transaction. It reports
// bindings/s, the CPU time used (cpu-ms) and the longest a one-object write waited meanwhile
// (max-write-stall-ms; see measureWriteStalls).
func BenchmarkAllocate100k(b *testing.B) {
	b.ReportAllocs()
	var total, totalCPU, maxStall time.Duration
	for range b.N {
		b.StopTimer()
		s := benchStore(b)
		svc := benchService(b, s, "bench", benchTasks)
		benchNewTasks(b, s, svc, benchTasks)
		ctx, cancel := context.WithTimeout(context.Background(), benchWait)
		allocated := watchAllocated(ctx, s, benchTasks)
		b.StartTimer()

		start, cpu0 := time.Now(), cpuTime(b)
		stall := measureWriteStalls(s)
		stop := runAllocatorOf(b, allocator.New(s, quietLog), "allocate")
		err := <-allocated
		took, cpu := time.Since(start), cpuTime(b)-cpu0
		worst := stall()

		b.StopTimer()
		stop()
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		benchCheckAllocated(b, s, "bench", benchTasks)
		total, totalCPU, maxStall = total+took, totalCPU+cpu, max(maxStall, worst)
		b.Logf("100,000 tasks given their addresses in %s (%.0f bindings/s), %s of CPU; a write waited up to %s",
			took.Round(time.Millisecond), benchTasks/took.Seconds(), cpu.Round(time.Millisecond), worst.Round(time.Millisecond))
	}
	b.ReportMetric(float64(benchTasks*b.N)/total.Seconds(), "bindings/s")
	b.ReportMetric(float64(totalCPU.Milliseconds())/float64(b.N), "cpu-ms")
	b.ReportMetric(float64(maxStall.Milliseconds()), "max-write-stall-ms")
}

// BenchmarkRebuild100k times a new leader's allocator on a store holding what an earlier one
// left: 100,000 tasks RUNNING on 100 nodes with their addresses, 100,000 slot bindings whose
// history names each holder's node, and the service's VIP. It reports the rebuild the allocator
// measures itself (rebuild-ms: Report().Duration, networks, bindings and pools restored, tasks
// checked); the wall time from Run to its rebuild log line, when it counts as running
// (to-running-ms: the read of the store and the state dump the report keeps besides); the wall
// and CPU time until it gives a task made just before its address (to-first-alloc-ms, cpu-ms:
// its first round over the 100,000-task service comes first); and the longest a one-object
// write waited meanwhile (max-write-stall-ms; see measureWriteStalls).
func BenchmarkRebuild100k(b *testing.B) {
	s := benchStore(b)
	svc := benchService(b, s, "bench", benchTasks)
	benchNewTasks(b, s, svc, benchTasks)
	benchSettle(b, s)

	b.ReportAllocs()
	b.ResetTimer()
	var rebuild, running, firstAlloc, totalCPU, maxStall time.Duration
	for i := range b.N {
		b.StopTimer()
		probe := benchService(b, s, fmt.Sprintf("probe-%d", i), 1)
		task := benchNewTasks(b, s, probe, 1)[0]
		ctx, cancel := context.WithTimeout(context.Background(), benchWait)
		allocated := watchAllocated(ctx, s, 1)
		rebuilt := &rebuildLine{}
		a := allocator.New(s, slog.New(rebuilt))
		b.StartTimer()

		start, cpu0 := time.Now(), cpuTime(b)
		stall := measureWriteStalls(s)
		stop := runAllocatorOf(b, a, "takeover")
		err := <-allocated
		toFirst, cpu := time.Since(start), cpuTime(b)-cpu0

		b.StopTimer()
		worst := stall()
		stop()
		cancel()
		if err != nil {
			b.Fatalf("probe task %s: %v", task.Id, err)
		}
		rep := a.Report()
		if len(rep.Inconsistencies) > 0 {
			b.Fatalf("the rebuild found inconsistencies in what an allocator left: %q", rep.Inconsistencies)
		}
		toRunning := toFirst
		if at, ok := rebuilt.time(); ok {
			toRunning = at.Sub(start)
		}
		rebuild, running, firstAlloc = rebuild+rep.Duration, running+toRunning, firstAlloc+toFirst
		totalCPU, maxStall = totalCPU+cpu, max(maxStall, worst)
		b.Logf("rebuild %s, running after %s, first new task allocated after %s (%s of CPU); a write waited up to %s",
			rep.Duration.Round(time.Millisecond), toRunning.Round(time.Millisecond), toFirst.Round(time.Millisecond),
			cpu.Round(time.Millisecond), worst.Round(time.Millisecond))
	}
	n := float64(b.N)
	b.ReportMetric(float64(rebuild.Milliseconds())/n, "rebuild-ms")
	b.ReportMetric(float64(running.Milliseconds())/n, "to-running-ms")
	b.ReportMetric(float64(firstAlloc.Milliseconds())/n, "to-first-alloc-ms")
	b.ReportMetric(float64(totalCPU.Milliseconds())/n, "cpu-ms")
	b.ReportMetric(float64(maxStall.Milliseconds()), "max-write-stall-ms")
}

// rebuildLine is a slog handler that keeps the time of the allocator's first log line about its
// rebuild (logged once the rebuild is done, just before the allocator counts as running;
// Running() itself waits behind the allocator's lock, which its first round holds).
type rebuildLine struct {
	mu sync.Mutex
	at time.Time
}

func (h *rebuildLine) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *rebuildLine) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "rebuilt") {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.at.IsZero() {
			h.at = r.Time
		}
	}
	return nil
}

func (h *rebuildLine) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *rebuildLine) WithGroup(string) slog.Handler      { return h }

func (h *rebuildLine) time() (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.at, !h.at.IsZero()
}

// measureWriteStalls commits a one-object write to s every 5 ms until the returned function is
// called, which returns the longest any took. A write applies under the store's lock, as raft's
// Ready loop applies every committed entry on a manager: a write stalled here is, on a manager,
// a Ready loop that sends no heartbeat.
func measureWriteStalls(s *store.MemoryStore) (stop func() time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan time.Duration, 1)
	go func() {
		var worst time.Duration
		for seq := 0; ctx.Err() == nil; seq++ {
			t0 := time.Now()
			_ = s.Update(ctx, func(tx store.Tx) error {
				n := tx.Node(benchNode(0))
				n.Spec.Annotations.Labels = map[string]string{"seq": fmt.Sprint(seq)}
				return tx.Update(n)
			})
			worst = max(worst, time.Since(t0))
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
		done <- worst
	}()
	return func() time.Duration {
		cancel()
		return <-done
	}
}

// cpuTime is the CPU time the process has used so far, on every core: what a figure costs
// whatever else the machine runs (the benchmark's own goroutines are idle meanwhile).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// quietLog drops the allocator's log lines; a benchmark is not about them.
var quietLog = slog.New(slog.DiscardHandler)

// benchStore is a store with the binding check, a network on benchSubnet and benchNodes nodes.
func benchStore(b *testing.B) *store.MemoryStore {
	b.Helper()
	s := store.New(store.CheckOf(allocator.CheckBindingConflicts))
	s.SetProposer(&localProposer{s: s})
	objs := []store.Object{&api.Network{Id: benchNet, Spec: &api.NetworkSpec{
		Annotations: &api.Annotations{Name: "bench"}, Driver: "overlay",
		Ipam: []*api.IPAMConfig{{Subnet: benchSubnet}}}}}
	for i := range benchNodes {
		objs = append(objs, rt.Node(benchNode(i)))
	}
	rt.Create(b, s, objs...)
	return s
}

func benchNode(i int) string { return fmt.Sprintf("node-%03d", i) }

// benchService creates a service of replicas (VIP mode) attached to the network.
func benchService(b *testing.B, s *store.MemoryStore, id string, replicas uint64) *api.Service {
	b.Helper()
	svc := rt.ReplicatedService(id, replicas, func(svc *api.Service) {
		svc.Spec.Task.Networks = []*api.NetworkAttachmentConfig{{Target: benchNet}}
	})
	rt.Create(b, s, svc)
	return svc
}

// benchNewTasks creates NEW tasks for slots 1..n of svc, reconcile.MaxWritesPerUpdate per
// transaction, as the replicated reconciler does.
func benchNewTasks(b *testing.B, s *store.MemoryStore, svc *api.Service, n int) []*api.Task {
	b.Helper()
	now := time.Now()
	tasks := make([]*api.Task, n)
	for i := range tasks {
		tasks[i] = reconcile.NewTask(svc, uint64(i+1), "", now)
	}
	for start := 0; start < n; start += reconcile.MaxWritesPerUpdate {
		chunk := tasks[start:min(start+reconcile.MaxWritesPerUpdate, n)]
		objs := make([]store.Object, len(chunk))
		for i, t := range chunk {
			objs[i] = t
		}
		rt.Create(b, s, objs...)
	}
	return tasks
}

// benchSettle brings the store to what a leader leaves after a while: an allocator gives every
// task its address, the tasks run on the nodes, and the allocator records each holder's node in
// its binding's history.
func benchSettle(b *testing.B, s *store.MemoryStore) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	allocated := watchAllocated(ctx, s, benchTasks)
	stop := runAllocatorOf(b, allocator.New(s, quietLog), "setup")
	defer stop()
	if err := <-allocated; err != nil {
		b.Fatal(err)
	}
	var ids []string
	s.View(func(tx store.ReadTx) {
		for _, t := range tx.SharedTasksByService("bench") {
			ids = append(ids, t.Id)
		}
	})
	for start := 0; start < len(ids); start += reconcile.MaxWritesPerUpdate {
		chunk := ids[start:min(start+reconcile.MaxWritesPerUpdate, len(ids))]
		rt.Update(b, s, func(tx store.Tx) error {
			for i, id := range chunk {
				t := tx.Task(id)
				t.NodeId = benchNode((start + i) % benchNodes)
				t.Status.State = api.TaskState_TASK_STATE_RUNNING
				if err := tx.Update(t); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for deadline := time.Now().Add(benchWait); ; time.Sleep(100 * time.Millisecond) {
		unknown := 0
		s.View(func(tx store.ReadTx) {
			for _, bd := range tx.BindingsByService("bench") {
				if h := bd.History; bd.Kind == api.IPBinding_KIND_SLOT && (len(h) == 0 || h[len(h)-1].NodeId == "") {
					unknown++
				}
			}
		})
		if unknown == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d bindings never recorded their holder's node", unknown)
		}
	}
	benchCheckAllocated(b, s, "bench", benchTasks)
}

// watchAllocated starts watching s and reports, once, nil when n tasks have been moved to
// PENDING with their addresses, or why it gave up.
func watchAllocated(ctx context.Context, s *store.MemoryStore, n int) <-chan error {
	watch := s.Watch(ctx)
	done := make(chan error, 1)
	go func() {
		seen := make(map[string]bool, n)
		for b := range watch {
			for _, ev := range b.Events {
				t, ok := ev.Object.(*api.Task)
				if ok && ev.Action == api.StoreAction_KIND_UPDATE && len(t.Networks) > 0 &&
					t.GetStatus().GetState() == api.TaskState_TASK_STATE_PENDING {
					seen[t.Id] = true
				}
			}
			if len(seen) >= n {
				done <- nil
				return
			}
		}
		done <- fmt.Errorf("%d of %d tasks given their addresses when the watch ended: %v", len(seen), n, ctx.Err())
	}()
	return done
}

// runAllocatorOf runs a until the returned stop is called. Its CPU profile samples carry the
// label phase (setup, allocate, takeover): go tool pprof -tagfocus phase=takeover.
func runAllocatorOf(b *testing.B, a *allocator.Allocator, phase string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	pprof.Do(ctx, pprof.Labels("phase", phase), func(ctx context.Context) {
		go func() {
			defer close(done)
			if err := a.Run(ctx); err != nil {
				b.Errorf("allocator: %v", err)
			}
		}()
	})
	return func() {
		cancel()
		<-done
	}
}

// benchCheckAllocated fails b unless each of service's n tasks holds a distinct address that its
// slot's binding gives it.
func benchCheckAllocated(b *testing.B, s *store.MemoryStore, service string, n int) {
	b.Helper()
	s.View(func(tx store.ReadTx) {
		tasks := tx.SharedTasksByService(service)
		if len(tasks) != n {
			b.Fatalf("%d tasks, want %d", len(tasks), n)
		}
		seen := make(map[string]bool, n)
		for _, t := range tasks {
			if len(t.Networks) != 1 || seen[t.Networks[0].Address] {
				b.Fatalf("task %s: attachments %v (an address given twice, or none)", t.Id, t.Networks)
			}
			seen[t.Networks[0].Address] = true
			bd := tx.Binding(t.Networks[0].BindingId)
			if bd == nil || bd.TaskId != t.Id || bd.Address != t.Networks[0].Address {
				b.Fatalf("task %s at %s: its binding is %v", t.Id, t.Networks[0].Address, bd)
			}
		}
	})
}
