package main

// This file owns `shoal-bench allocator`: the sticky-address allocator on a real cluster. Three
// in-process managers (as `orchestration`) and simulated worker nodes, or none; one network and
// one service of many replicas created through the leader's Control socket, timed until every
// task has its address and runs; then the leader is stopped as a crash would stop it, again and
// again (takeover.go), and each new leader's takeover is read: its GetAllocatorState
// rebuild_duration, the wall time from the kill to its allocator running, and whether the state
// it rebuilt is the one the old leader had.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/manager/managertest"
	"github.com/shoal/shoal/orchestrator/store"
)

type allocatorOptions struct {
	out     string
	nodes   int
	tasks   int
	kills   int
	timeout time.Duration
	cpuprof string
	logFile string
}

func allocatorCommand() *cobra.Command {
	var o allocatorOptions
	cmd := &cobra.Command{
		Use:   "allocator",
		Short: "Addresses for a service's tasks, and the allocator's rebuild on each leader takeover, on a 3-manager cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.nodes < 0:
				return fmt.Errorf("--nodes: %d is not a node count", o.nodes)
			case o.tasks <= 0 || o.tasks > 131_000:
				return fmt.Errorf("--tasks: %d is not between 1 and 131,000 (the /15 holds 131,070 addresses)", o.tasks)
			case o.kills <= 0:
				return fmt.Errorf("--kills: %d is not a positive count", o.kills)
			}
			return runAllocatorBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose allocator section (cluster, or takeover with --nodes 0) is replaced with the figures")
	f.IntVar(&o.nodes, "nodes", 100, "simulated worker nodes; with 0 the tasks get their addresses and stay PENDING, unplaced")
	f.IntVar(&o.tasks, "tasks", 20_000, "replicas of the service on the network (at most 131,000: the network is a /15)")
	f.IntVar(&o.kills, "kills", 3, "leader kills, each followed by the new leader's rebuild")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a step after this long")
	f.StringVar(&o.cpuprof, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	f.StringVar(&o.logFile, "log", "", "write the managers' log lines (info and up) to this file")
	return cmd
}

// benchSubnet is the network's subnet: 198.18.0.0/15 is set aside for benchmarks (RFC 2544).
const benchSubnet = "198.18.0.0/15"

type allocatorResult struct {
	setup     time.Duration
	created   time.Duration // every task exists
	addressed time.Duration // every task has its address (PENDING or later, with networks)
	running   time.Duration // every task RUNNING
	settled   time.Duration // every binding records its holder's node
	elections int           // leaders elected while the service was created (none expected)
	takeovers []takeover
}

func runAllocatorBench(ctx context.Context, o allocatorOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	started := time.Now()
	res, err := measureAllocator(ctx, o)
	if err != nil {
		return err
	}
	cmd := fmt.Sprintf("go run ./cmd/shoal-bench allocator --nodes %d --tasks %d --kills %d", o.nodes, o.tasks, o.kills)
	section := fmt.Sprintf("%s\nMeasured %s on %s, with `%s`.\n", renderAllocator(o, res),
		started.UTC().Format("2006-01-02 15:04 MST"), machine(), cmd)
	return writeSection(o.out, sectionName(o), section)
}

// sectionName is the run's section of the benchmarks document: one with workers, one without.
func sectionName(o allocatorOptions) string {
	if o.nodes == 0 {
		return "allocator takeover"
	}
	return "allocator cluster"
}

func measureAllocator(ctx context.Context, o allocatorOptions) (allocatorResult, error) {
	var res allocatorResult
	dir, err := os.MkdirTemp("", "shoal-bench-allocator")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
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
	t0 := time.Now()
	var logOut slog.Handler
	if o.logFile != "" {
		f, err := os.Create(o.logFile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		logOut = slog.NewTextHandler(f, nil)
	}
	marks := newLogMarks(logOut)
	c, err := startBenchCluster(ctx, dir, o.nodes, managertest.Options{Logger: slog.New(marks)}, nil)
	if err != nil {
		return res, err
	}
	defer c.Close()
	leader := c.leader
	res.setup = time.Since(t0)
	fmt.Printf("allocator: 3 managers and %d simulated nodes ready after %s\n", o.nodes, res.setup.Round(time.Millisecond))

	createStart := time.Now()
	if err := createOnNetwork(ctx, leader, o, &res); err != nil {
		return res, err
	}
	res.elections = marks.count(msgLeader, createStart)
	fmt.Printf("allocator: %d tasks created after %s, all with addresses after %s (%.0f addresses/s); %d leader elections meanwhile\n",
		o.tasks, ms(res.created), ms(res.addressed), float64(o.tasks)/res.addressed.Seconds(), res.elections)
	if o.nodes > 0 {
		fmt.Printf("allocator: all RUNNING after %s, every binding records its holder's node after %s\n", ms(res.running), ms(res.settled))
	}

	for k := range o.kills {
		tk, err := killLeader(ctx, c.Cluster, marks, o)
		if err != nil {
			return res, fmt.Errorf("kill %d: %w", k+1, err)
		}
		res.takeovers = append(res.takeovers, tk)
		fmt.Printf("allocator: kill %d of manager %d: leader elected after %s, allocator running after %s (rebuild_duration %s), GetAllocatorState answered after %s; %d elections, %d bindings, %d tasks, state identical: %v, inconsistencies: %d\n",
			k+1, tk.killedIndex, ms(tk.elected), ms(tk.running), ms(tk.rebuild), ms(tk.answered), tk.elections, tk.bindings, tk.tasks, tk.same, tk.inconsist)
	}
	return res, nil
}

// control opens a Control client on m's socket that takes the allocator's state dumps (tens of
// megabytes at 100,000 bindings).
func control(m *managertest.Member) (api.ControlClient, func(), error) {
	conn, err := grpc.NewClient("unix://"+m.ControlSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(512<<20)))
	if err != nil {
		return nil, nil, err
	}
	return api.NewControlClient(conn), func() { conn.Close() }, nil
}

// createOnNetwork creates a network and a service of o.tasks replicas on it through the
// leader's Control socket, and times until every task exists, has its address and runs; then
// waits until the allocator has recorded every holder's node (it is idle from then on).
func createOnNetwork(ctx context.Context, leader *managertest.Member, o allocatorOptions, res *allocatorResult) error {
	ctl, closeCtl, err := control(leader)
	if err != nil {
		return err
	}
	defer closeCtl()
	if _, err := ctl.CreateNetwork(ctx, &api.CreateNetworkRequest{Spec: &api.NetworkSpec{
		Annotations: &api.Annotations{Name: "bench"}, Driver: "overlay",
		Ipam: []*api.IPAMConfig{{Subnet: benchSubnet}},
	}}); err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	spec := benchSpec("bench", o.tasks)
	spec.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "bench"}}
	s := leader.Store()
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	watch := s.Watch(wctx)
	start := time.Now()
	resp, err := ctl.CreateService(wctx, &api.CreateServiceRequest{Spec: spec})
	if err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	id := resp.Service.Id
	created, addressed, running := map[string]bool{}, map[string]bool{}, map[string]bool{}
	done := func() bool { return res.running > 0 || (o.nodes == 0 && res.addressed > 0) }
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	for !done() {
		select {
		case <-wctx.Done():
			describeTasks(s, id)
			return fmt.Errorf("after %s: %d tasks created, %d with addresses, %d RUNNING of %d", o.timeout, len(created), len(addressed), len(running), o.tasks)
		case <-progress.C:
			fmt.Printf("allocator: after %s: %d tasks created, %d with addresses, %d RUNNING\n", time.Since(start).Round(time.Second), len(created), len(addressed), len(running))
		case b, ok := <-watch:
			if !ok {
				return fmt.Errorf("the leader's store watch closed")
			}
			for _, ev := range b.Events {
				t, isTask := ev.Object.(*api.Task)
				if !isTask || t.ServiceId != id || ev.Action == api.StoreAction_KIND_DELETE {
					continue
				}
				created[t.Id] = true
				st := t.Status.GetState()
				if len(t.Networks) > 0 && st >= api.TaskState_TASK_STATE_PENDING {
					addressed[t.Id] = true
				}
				if st == api.TaskState_TASK_STATE_RUNNING {
					running[t.Id] = true
				}
			}
			now := time.Since(start)
			if res.created == 0 && len(created) >= o.tasks {
				res.created = now
			}
			if res.addressed == 0 && len(addressed) >= o.tasks {
				res.addressed = now
			}
			if len(running) >= o.tasks {
				res.running = now
			}
		}
	}
	if len(created) > o.tasks {
		describeTasks(s, id)
	}
	if o.nodes == 0 {
		return nil
	}
	for {
		unknown := 0
		s.View(func(tx store.ReadTx) {
			for _, b := range tx.BindingsByService(id) {
				if h := b.History; b.Kind == api.IPBinding_KIND_SLOT && (len(h) == 0 || h[len(h)-1].NodeId == "") {
					unknown++
				}
			}
		})
		if unknown == 0 {
			res.settled = time.Since(start)
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("%d bindings still without their holder's node after %s", unknown, o.timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// describeTasks prints how many of service id's tasks are in each desired/observed state, with
// their status messages: where tasks beyond the replica count came from.
func describeTasks(s *store.MemoryStore, id string) {
	counts := map[string]int{}
	s.View(func(tx store.ReadTx) {
		for _, t := range tx.SharedTasksByService(id) {
			counts[fmt.Sprintf("%s/%s %q", t.DesiredState, t.GetStatus().GetState(), t.GetStatus().GetMessage())]++
		}
	})
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("allocator:   %6d tasks %s\n", counts[k], k)
	}
}

func renderAllocator(o allocatorOptions, res allocatorResult) string {
	var b bytes.Buffer
	if o.nodes > 0 {
		fmt.Fprintf(&b, "### %d tasks on a network, 3 managers, %d simulated nodes\n\n", o.tasks, o.nodes)
		fmt.Fprintf(&b, "Three managers and %d simulated worker nodes in one process on loopback (as in Orchestration). A\n"+
			"network on %s and one service of %d replicas on it are created through the leader's Control\n"+
			"socket; the times run from the CreateService call until every task exists (replicated reconciler),\n"+
			"has its address (the allocator: %d slot bindings and the VIP, and every task's attachment,\n"+
			"committed through raft), runs (scheduler, dispatcher, agents), and every binding records its\n"+
			"holder's node (the allocator again). The allocator works behind the reconciler's commits, so the\n"+
			"address time includes making the tasks.\n\n",
			o.nodes, benchSubnet, o.tasks, o.tasks)
		fmt.Fprintf(&b, "| all created | all with addresses | addresses/s | all RUNNING | bindings record their nodes |\n|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s |\n\n", ms(res.created), ms(res.addressed), float64(o.tasks)/res.addressed.Seconds(), ms(res.running), ms(res.settled))
	} else {
		fmt.Fprintf(&b, "### Leader takeover with %d tasks and bindings, 3 managers\n\n", o.tasks)
		fmt.Fprintf(&b, "Three managers in one process on loopback, no worker: a network on %s and one service of\n"+
			"%d replicas on it are created through the leader's Control socket, and the cluster is timed until\n"+
			"every task has its address (%d slot bindings and the VIP, and every task's attachment, committed\n"+
			"through raft). With no node to run on, the tasks stay PENDING with their addresses: the rebuild\n"+
			"below checks every one of them against its binding, as it would running tasks.\n\n",
			benchSubnet, o.tasks, o.tasks)
		fmt.Fprintf(&b, "| all created | all with addresses | addresses/s |\n|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| %s | %s | %.0f |\n\n", ms(res.created), ms(res.addressed), float64(o.tasks)/res.addressed.Seconds())
	}
	if res.elections > 0 {
		fmt.Fprintf(&b, "**%d leader elections** happened while the service was created (nothing was killed): each new\n"+
			"leader's components read the store again and its allocator rebuilt before going on, and these times\n"+
			"include it.\n\n", res.elections)
	} else {
		fmt.Fprintf(&b, "No leader changed while the service was created.\n\n")
	}
	var dump int
	for _, t := range res.takeovers {
		dump = max(dump, t.dumpBytes)
	}
	if o.nodes > 0 {
		fmt.Fprintf(&b, "Then, %d times, the leader is stopped and the new leader's takeover read, as under *Leader takeover*\n"+
			"(%d tasks, %d bindings; GetAllocatorState answers with %.1f MB of state dumps).\n\n",
			len(res.takeovers), o.tasks, o.tasks+1, float64(dump)/1e6)
	} else {
		fmt.Fprintf(&b, "Then, %d times, the leader is stopped as a crash would stop it (no leadership transfer) once every\n"+
			"manager has applied its log, and started again after the takeover. The new leader's allocator\n"+
			"rebuilds its state from the replicated records (%d tasks, %d bindings) before it allocates\n"+
			"anything. *rebuild* is the new leader's GetAllocatorState `rebuild_duration`. *elected* and\n"+
			"*allocator running* run from the kill to the new leader's log lines\n"+
			"\"%s\" and\n"+
			"\"%s\"; the second comes after the election,\n"+
			"the allocator's catch-up read of the log, its read of the store, the rebuild and the state dump it\n"+
			"keeps. *answered* is from the kill to the first GetAllocatorState the new leader answers (with\n"+
			"%.1f MB of state dumps). *elections* counts the leaders elected from the kill to that answer (more\n"+
			"than one: the first new leader lost its leadership again). *same state* compares the new leader's\n"+
			"rebuilt dump with the old leader's dump before the kill. Before each kill the cluster is left\n"+
			"alone until its managers have agreed on the leader and the term for %s, all caught up.\n\n",
			len(res.takeovers), o.tasks, o.tasks+1, msgLeader, msgRebuilt, float64(dump)/1e6, quiet)
	}
	fmt.Fprintf(&b, "| kill | elected | allocator running | rebuild | answered | elections | same state | inconsistencies |\n|---:|---:|---:|---:|---:|---:|---|---:|\n")
	var rebuilds, running []time.Duration
	for i, t := range res.takeovers {
		same := "yes"
		if !t.same {
			same = "**no**"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %d | %s | %d |\n", i+1, ms(t.elected), ms(t.running), ms(t.rebuild), ms(t.answered), t.elections, same, t.inconsist)
		rebuilds, running = append(rebuilds, t.rebuild), append(running, t.running-t.elected)
	}
	slices.Sort(rebuilds)
	slices.Sort(running)
	if n := len(rebuilds); n > 0 {
		fmt.Fprintf(&b, "\nRebuild %s to %s (median %s); from election to allocator running %s to %s. Target: rebuild under 500 ms.\n",
			ms(rebuilds[0]), ms(rebuilds[n-1]), ms(rebuilds[n/2]), ms(running[0]), ms(running[n-1]))
	}
	return b.String()
}
