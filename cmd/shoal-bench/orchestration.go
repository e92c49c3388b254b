package main

// This file owns `shoal-bench orchestration`, in the spirit of swarm-bench:
// three in-process managers, N simulated worker nodes in the same process
// (each a real agent with its own worker certificate and mTLS session over
// loopback, running tasks with the sim executor), one service of M
// replicas created through the Control API, and the time until every task
// is RUNNING. It also measures the scheduler's placement rate on its own.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal/shoal/agent"
	"github.com/shoal/shoal/agent/exec/sim"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/manager"
	"github.com/shoal/shoal/orchestrator/manager/managertest"
	"github.com/shoal/shoal/orchestrator/scheduler"
	"github.com/shoal/shoal/orchestrator/store"
)

type orchestrationOptions struct {
	out      string
	nodes    int
	replicas int
	runs     int
	timeout  time.Duration
	cpuprof  string
}

func orchestrationCommand() *cobra.Command {
	var o orchestrationOptions
	cmd := &cobra.Command{
		Use:   "orchestration",
		Short: "Time from service create to every task RUNNING on simulated nodes, and the scheduler's placement rate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.nodes <= 0:
				return fmt.Errorf("--nodes: %d is not a positive node count", o.nodes)
			case o.replicas <= 0:
				return fmt.Errorf("--replicas: %d is not a positive replica count", o.replicas)
			case o.runs <= 0:
				return fmt.Errorf("--runs: %d is not a positive count", o.runs)
			}
			return runOrchestrationBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose orchestration section is replaced with the figures")
	f.IntVar(&o.nodes, "nodes", 1000, "simulated worker nodes")
	f.IntVar(&o.replicas, "replicas", 10000, "replicas of the service created in each run")
	f.IntVar(&o.runs, "runs", 3, "services created one after the other (each removed before the next)")
	f.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up on a run after this long")
	f.StringVar(&o.cpuprof, "cpuprofile", "", "write a CPU profile of the create runs to this file")
	return cmd
}

// createRun is one service create, timed from the CreateService call.
type createRun struct {
	created  time.Duration // every task exists
	assigned time.Duration // every task is on a node
	running  time.Duration // every task reported RUNNING
}

type orchestrationResult struct {
	setup     time.Duration
	runs      []createRun
	planRates []float64 // scheduler.Plan placements per second
	// placement is how long the leader's scheduler took to place every
	// task of a service whose tasks all waited, pending, for nodes.
	placement  time.Duration
	nodesReady int
}

func runOrchestrationBench(ctx context.Context, o orchestrationOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	started := time.Now()
	res, err := measureOrchestration(ctx, o)
	if err != nil {
		return err
	}
	cmd := fmt.Sprintf("go run ./cmd/shoal-bench orchestration --nodes %d --replicas %d --runs %d", o.nodes, o.replicas, o.runs)
	section := fmt.Sprintf("%s\nMeasured %s on %s, with `%s`.\n", renderOrchestration(o, res),
		started.UTC().Format("2006-01-02 15:04 MST"), machine(), cmd)
	return writeSection(o.out, "orchestration", section)
}

func measureOrchestration(ctx context.Context, o orchestrationOptions) (orchestrationResult, error) {
	var res orchestrationResult
	dir, err := os.MkdirTemp("", "shoal-bench-orchestration")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	c, err := startBenchCluster(ctx, dir, o.nodes, managertest.Options{}, func() {
		fmt.Printf("orchestration: %d simulated nodes joined in %s; waiting until they are ready\n", o.nodes, time.Since(t0).Round(time.Millisecond))
	})
	if err != nil {
		return res, err
	}
	defer c.Close()
	res.setup = time.Since(t0)
	res.nodesReady = o.nodes
	fmt.Printf("orchestration: %d nodes ready after %s\n", o.nodes, res.setup.Round(time.Millisecond))

	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}
	for i := range o.runs {
		l, err := c.WaitLeader(ctx)
		if err != nil {
			return res, err
		}
		r, err := createAndWait(ctx, l, fmt.Sprintf("bench%d", i), o)
		if err != nil {
			return res, fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Printf("orchestration: run %d: %d tasks created after %s, assigned after %s, RUNNING after %s (%.0f tasks/s)\n",
			i+1, o.replicas, ms(r.created), ms(r.assigned), ms(r.running), float64(o.replicas)/r.running.Seconds())
		res.runs = append(res.runs, r)
	}

	l, err := c.WaitLeader(ctx)
	if err != nil {
		return res, err
	}
	if res.placement, err = measurePlacement(ctx, l, o); err != nil {
		return res, fmt.Errorf("placement run: %w", err)
	}
	fmt.Printf("orchestration: the leader's scheduler placed %d waiting tasks in %s (%.0f placements/s, raft commits included)\n",
		o.replicas, ms(res.placement), float64(o.replicas)/res.placement.Seconds())

	// The scheduler on its own: the same placement code the leader runs,
	// on the same nodes, for the same number of new tasks.
	var nodes []*api.Node
	l.Store().View(func(tx store.ReadTx) {
		for _, n := range tx.Nodes() {
			if n.Role == api.NodeRole_NODE_ROLE_WORKER {
				nodes = append(nodes, n)
			}
		}
	})
	svc := &api.Service{Id: "plan", SpecVersion: 1, Spec: benchSpec("plan", o.replicas)}
	for range 5 {
		pending := make([]*api.Task, o.replicas)
		for j := range pending {
			pending[j] = &api.Task{
				Id: fmt.Sprintf("plan-%d", j), ServiceId: svc.Id, ServiceName: "plan", Slot: uint64(j + 1),
				Spec: svc.Spec.Task, SpecVersion: 1, DesiredState: api.TaskState_TASK_STATE_RUNNING,
				Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_PENDING},
			}
		}
		start := time.Now()
		out := scheduler.Plan(nodes, nil, pending)
		d := time.Since(start)
		if len(out.Assigned) != o.replicas {
			return res, fmt.Errorf("scheduler.Plan placed %d of %d tasks", len(out.Assigned), o.replicas)
		}
		res.planRates = append(res.planRates, float64(o.replicas)/d.Seconds())
	}
	slices.Sort(res.planRates)
	fmt.Printf("orchestration: scheduler.Plan: %.0f placements/s (median of 5; %d tasks on %d nodes)\n",
		res.planRates[len(res.planRates)/2], o.replicas, len(nodes))
	return res, nil
}

// startSimNodes issues a worker certificate to each simulated node and
// starts its agent with a sim executor.
func startSimNodes(ctx context.Context, wg *sync.WaitGroup, dir string, addrs []string, token string, n int) error {
	quiet := slog.New(slog.DiscardHandler)
	var (
		next   atomic.Int64
		failed atomic.Value
		issue  sync.WaitGroup
	)
	for range 16 {
		issue.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				hostname := fmt.Sprintf("sim-%04d", i)
				desc := &api.NodeDescription{Hostname: hostname}
				jctx, cancel := context.WithTimeout(ctx, time.Minute)
				sc, err := ca.RequestCertificate(jctx, addrs[i%len(addrs)], token, desc, "", filepath.Join(dir, "nodes", hostname))
				cancel()
				if err != nil {
					failed.Store(fmt.Errorf("node %s joins: %w", hostname, err))
					return
				}
				ex, err := sim.New(sim.Config{NanoCPUs: 4e9, MemoryBytes: 16 << 30})
				if err != nil {
					failed.Store(err)
					return
				}
				// Spread the agents' first choice over the managers, as
				// real workers joining through different managers are.
				managers := append(append([]string(nil), addrs[i%len(addrs):]...), addrs[:i%len(addrs)]...)
				ag := agent.New(agent.Config{
					Managers:    managers,
					Dial:        func(_ context.Context, addr string) (*grpc.ClientConn, error) { return manager.Dial(addr, sc) },
					Description: desc,
					Executor:    ex,
					Logger:      quiet,
				})
				wg.Go(func() { _ = ag.Run(ctx) })
			}
		})
	}
	issue.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	return nil
}

func waitReadyNodes(ctx context.Context, c *managertest.Cluster, want int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if l := c.Leader(); l != nil {
			ready := 0
			l.Store().View(func(tx store.ReadTx) {
				for _, n := range tx.Nodes() {
					if n.Role == api.NodeRole_NODE_ROLE_WORKER && n.Status.GetState() == api.NodeState_NODE_STATE_READY {
						ready++
					}
				}
			})
			if ready >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("fewer than %d nodes ready after 5 minutes", want)
}

func benchSpec(name string, replicas int) *api.ServiceSpec {
	return &api.ServiceSpec{
		Annotations: &api.Annotations{Name: name},
		Task:        &api.TaskSpec{Container: &api.ContainerSpec{Image: "sim/bench"}},
		Mode:        &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: uint64(replicas)}},
	}
}

// createAndWait creates a service through the leader's Control socket and
// watches the leader's store until every task runs; then removes the
// service and waits until its tasks are gone.
func createAndWait(ctx context.Context, leader *managertest.Member, name string, o orchestrationOptions) (createRun, error) {
	var r createRun
	conn, err := grpc.NewClient("unix://"+leader.ControlSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return r, err
	}
	defer conn.Close()
	ctl := api.NewControlClient(conn)
	s := leader.Store()
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	watch := s.Watch(wctx)

	start := time.Now()
	resp, err := ctl.CreateService(wctx, &api.CreateServiceRequest{Spec: benchSpec(name, o.replicas)})
	if err != nil {
		return r, fmt.Errorf("create service: %w", err)
	}
	id := resp.Service.Id
	created, assigned, running := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for r.running == 0 {
		select {
		case <-wctx.Done():
			return r, fmt.Errorf("%d of %d tasks RUNNING after %s", len(running), o.replicas, o.timeout)
		case b, ok := <-watch:
			if !ok {
				return r, fmt.Errorf("the leader's store watch closed")
			}
			for _, ev := range b.Events {
				t, isTask := ev.Object.(*api.Task)
				if !isTask || t.ServiceId != id || ev.Action == api.StoreAction_KIND_DELETE {
					continue
				}
				created[t.Id] = true
				st := t.Status.GetState()
				if st >= api.TaskState_TASK_STATE_ASSIGNED {
					assigned[t.Id] = true
				}
				if st == api.TaskState_TASK_STATE_RUNNING {
					running[t.Id] = true
				}
			}
			now := time.Since(start)
			if r.created == 0 && len(created) >= o.replicas {
				r.created = now
			}
			if r.assigned == 0 && len(assigned) >= o.replicas {
				r.assigned = now
			}
			if len(running) >= o.replicas {
				r.running = now
			}
		}
	}
	cancel()
	if _, err := ctl.RemoveService(ctx, &api.RemoveServiceRequest{ServiceId: id}); err != nil {
		return r, fmt.Errorf("remove service: %w", err)
	}
	// Wait until the reaper has removed the tasks, so runs do not overlap.
	deadline := time.Now().Add(o.timeout)
	for time.Now().Before(deadline) {
		left := 0
		s.View(func(tx store.ReadTx) { left = len(tx.TasksByService(id)) })
		if left == 0 {
			return r, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return r, fmt.Errorf("tasks of the removed service still in the store after %s", o.timeout)
}

// setWorkersAvailability sets every worker's availability in one
// transaction.
func setWorkersAvailability(ctx context.Context, s *store.MemoryStore, a api.NodeAvailability) error {
	return s.Update(ctx, func(tx store.Tx) error {
		for _, n := range tx.Nodes() {
			if n.Role != api.NodeRole_NODE_ROLE_WORKER || n.Spec.GetAvailability() == a {
				continue
			}
			if n.Spec == nil {
				n.Spec = &api.NodeSpec{}
			}
			n.Spec.Availability = a
			if err := tx.Update(n); err != nil {
				return err
			}
		}
		return nil
	})
}

// measurePlacement pauses every worker, creates a service whose tasks all
// wait, pending, then makes every worker active again in one transaction
// and times until the leader's scheduler has placed (and committed) every
// task: its placement rate in the cluster, raft commits included.
func measurePlacement(ctx context.Context, leader *managertest.Member, o orchestrationOptions) (time.Duration, error) {
	s := leader.Store()
	if err := setWorkersAvailability(ctx, s, api.NodeAvailability_NODE_AVAILABILITY_PAUSE); err != nil {
		return 0, err
	}
	conn, err := grpc.NewClient("unix://"+leader.ControlSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctl := api.NewControlClient(conn)
	resp, err := ctl.CreateService(ctx, &api.CreateServiceRequest{Spec: benchSpec("placement", o.replicas)})
	if err != nil {
		return 0, fmt.Errorf("create service: %w", err)
	}
	id := resp.Service.Id
	count := func(min api.TaskState) int {
		n := 0
		s.View(func(tx store.ReadTx) {
			for _, t := range tx.SharedTasksByService(id) {
				if t.Status.GetState() >= min {
					n++
				}
			}
		})
		return n
	}
	wait := func(what string, done func() bool) error {
		deadline := time.Now().Add(o.timeout)
		for !done() {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not after %s", what, o.timeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}
	if err := wait("every task pending", func() bool { return count(api.TaskState_TASK_STATE_PENDING) >= o.replicas }); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := setWorkersAvailability(ctx, s, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE); err != nil {
		return 0, err
	}
	if err := wait("every task placed", func() bool { return count(api.TaskState_TASK_STATE_ASSIGNED) >= o.replicas }); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if _, err := ctl.RemoveService(ctx, &api.RemoveServiceRequest{ServiceId: id}); err != nil {
		return 0, fmt.Errorf("remove service: %w", err)
	}
	return took, wait("tasks of the removed service reaped", func() bool {
		n := 0
		s.View(func(tx store.ReadTx) { n = len(tx.SharedTasksByService(id)) })
		return n == 0
	})
}

func renderOrchestration(o orchestrationOptions, res orchestrationResult) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "## Orchestration\n\n### %d replicas on %d simulated nodes, 3 managers\n\n", o.replicas, o.nodes)
	fmt.Fprintf(&b, "Three managers and %d simulated worker nodes in one process on loopback: every node is a real agent\n"+
		"with its own worker certificate and mTLS session to a manager, running tasks with the sim executor\n"+
		"(tasks start at once). Each run creates one service of %d replicas through the leader's Control socket\n"+
		"and times, from the call, until every task exists (replicated reconciler), is on a node (scheduler:\n"+
		"plan and raft commit) and has been reported RUNNING by its agent and committed (dispatcher).\n"+
		"Setting up the %d nodes (certificates, sessions, all READY) took %s.\n\n",
		o.nodes, o.replicas, o.nodes, res.setup.Round(time.Second))
	fmt.Fprintf(&b, "| run | all created | all assigned | all RUNNING | tasks/s |\n|---:|---:|---:|---:|---:|\n")
	for i, r := range res.runs {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %.0f |\n", i+1, ms(r.created), ms(r.assigned), ms(r.running), float64(o.replicas)/r.running.Seconds())
	}
	if res.placement > 0 {
		fmt.Fprintf(&b, "\nThe leader's scheduler in the cluster: with every worker paused, a service of %d replicas is\n"+
			"created and waits, pending; then all %d workers are made active in one transaction, and the scheduler\n"+
			"places every task and commits the placements through raft in **%s: %.0f placements/s**.\n",
			o.replicas, o.nodes, ms(res.placement), float64(o.replicas)/res.placement.Seconds())
	}
	if n := len(res.planRates); n > 0 {
		fmt.Fprintf(&b, "\nThe scheduler on its own (`scheduler.Plan`, the code the leader runs, on the same %d nodes,\n"+
			"%d new tasks of one service, spread): **%.0f placements/s** (median of %d; range %.0f–%.0f).\n",
			o.nodes, o.replicas, res.planRates[n/2], n, res.planRates[0], res.planRates[n-1])
	}
	fmt.Fprintf(&b, "\nTargets: all %d RUNNING within 3 s of create; the scheduler at least 20,000 placements/s.\n", o.replicas)
	return b.String()
}
