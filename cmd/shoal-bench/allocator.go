package main

// This file owns `shoal-bench allocator`: the sticky-address allocator on a real cluster. Three
// in-process managers (as `orchestration`) and simulated worker nodes; one network and one
// service of many replicas created through the leader's Control socket, timed until every task
// has its address and runs; then the leader is stopped as a crash would stop it, again and
// again, and each new leader's takeover is read: its GetAllocatorState rebuild_duration, the
// wall time from the kill to its allocator running, and whether the state it rebuilt is the one
// the old leader had.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
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
}

func allocatorCommand() *cobra.Command {
	var o allocatorOptions
	cmd := &cobra.Command{
		Use:   "allocator",
		Short: "Addresses for a service's tasks, and the allocator's rebuild on each leader takeover, on a 3-manager cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.nodes <= 0:
				return fmt.Errorf("--nodes: %d is not a positive node count", o.nodes)
			case o.tasks <= 0 || o.tasks > 131_000:
				return fmt.Errorf("--tasks: %d is not between 1 and 131,000 (the /15 holds 131,070 addresses)", o.tasks)
			case o.kills <= 0:
				return fmt.Errorf("--kills: %d is not a positive count", o.kills)
			}
			return runAllocatorBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose allocator section is replaced with the figures")
	f.IntVar(&o.nodes, "nodes", 100, "simulated worker nodes")
	f.IntVar(&o.tasks, "tasks", 100_000, "replicas of the service on the network (at most 131,000: the network is a /15)")
	f.IntVar(&o.kills, "kills", 3, "leader kills, each followed by the new leader's rebuild")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a step after this long")
	f.StringVar(&o.cpuprof, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	return cmd
}

// benchSubnet is the network's subnet: 198.18.0.0/15 is set aside for benchmarks (RFC 2544).
const benchSubnet = "198.18.0.0/15"

// The allocator's and the manager's log lines the takeover is timed by (orchestrator/allocator
// rebuild.go, orchestrator/manager leader.go).
const (
	msgRebuilt = "allocator state rebuilt from the replicated records"
	msgLeader  = "became leader; leader components started"
)

type allocatorResult struct {
	setup     time.Duration
	created   time.Duration // every task exists
	addressed time.Duration // every task has its address (PENDING or later, with networks)
	running   time.Duration // every task RUNNING
	settled   time.Duration // every binding records its holder's node
	takeovers []takeover
}

// takeover is one leader kill.
type takeover struct {
	killedIndex int
	elected     time.Duration // kill → a survivor becomes leader
	running     time.Duration // kill → the new leader's allocator has rebuilt and runs
	rebuild     time.Duration // the new leader's rebuild_duration
	answered    time.Duration // kill → GetAllocatorState answered by the new leader
	bindings    int
	tasks       int
	same        bool // the rebuilt state is byte for byte the old leader's
	inconsist   int
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
	return writeSection(o.out, "allocator", section)
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
	marks := newLogMarks()
	c, err := managertest.Start(ctx, dir, 3, managertest.Options{Logger: slog.New(marks)})
	if err != nil {
		return res, err
	}
	defer c.Close()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		return res, err
	}
	var addrs []string
	for _, m := range c.Members() {
		addrs = append(addrs, m.Addr())
	}
	var token string
	leader.Store().View(func(tx store.ReadTx) {
		if cs := tx.Clusters(); len(cs) > 0 {
			token = cs[0].RootCa.GetJoinTokens().GetWorker()
		}
	})
	if token == "" {
		return res, fmt.Errorf("the cluster has no worker join token")
	}
	actx, stopAgents := context.WithCancel(ctx)
	var agents sync.WaitGroup
	defer func() {
		stopAgents()
		agents.Wait()
	}()
	if err := startSimNodes(actx, &agents, dir, addrs, token, o.nodes); err != nil {
		return res, err
	}
	if err := waitReadyNodes(ctx, c, o.nodes); err != nil {
		return res, err
	}
	res.setup = time.Since(t0)
	fmt.Printf("allocator: 3 managers and %d simulated nodes ready after %s\n", o.nodes, res.setup.Round(time.Millisecond))

	if err := createOnNetwork(ctx, leader, o, &res); err != nil {
		return res, err
	}
	fmt.Printf("allocator: %d tasks created after %s, all with addresses after %s (%.0f addresses/s), RUNNING after %s; bindings settled after %s\n",
		o.tasks, ms(res.created), ms(res.addressed), float64(o.tasks)/res.addressed.Seconds(), ms(res.running), ms(res.settled))

	for k := range o.kills {
		tk, err := killLeader(ctx, c, marks, o)
		if err != nil {
			return res, fmt.Errorf("kill %d: %w", k+1, err)
		}
		res.takeovers = append(res.takeovers, tk)
		fmt.Printf("allocator: kill %d of manager %d: leader elected after %s, allocator running after %s (rebuild_duration %s), GetAllocatorState answered after %s; %d bindings, %d tasks, state identical: %v, inconsistencies: %d\n",
			k+1, tk.killedIndex, ms(tk.elected), ms(tk.running), ms(tk.rebuild), ms(tk.answered), tk.bindings, tk.tasks, tk.same, tk.inconsist)
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
	for res.running == 0 {
		select {
		case <-wctx.Done():
			return fmt.Errorf("after %s: %d tasks created, %d with addresses, %d RUNNING of %d", o.timeout, len(created), len(addressed), len(running), o.tasks)
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

// killLeader waits until every manager has applied the leader's log, reads the leader's
// allocator state, stops the leader as a crash would, and times the takeover; then starts the
// stopped manager again.
func killLeader(ctx context.Context, c *managertest.Cluster, marks *logMarks, o allocatorOptions) (takeover, error) {
	var tk takeover
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	leader, err := caughtUp(wctx, c)
	if err != nil {
		return tk, err
	}
	tk.killedIndex = leader.Index
	ctl, closeCtl, err := control(leader)
	if err != nil {
		return tk, err
	}
	before, err := ctl.GetAllocatorState(wctx, &api.GetAllocatorStateRequest{})
	closeCtl()
	if err != nil {
		return tk, fmt.Errorf("the old leader's allocator state: %w", err)
	}

	killed := time.Now()
	leader.Stop()
	next, err := c.WaitLeader(wctx)
	if err != nil {
		return tk, err
	}
	ctl, closeCtl, err = control(next)
	if err != nil {
		return tk, err
	}
	defer closeCtl()
	var after *api.GetAllocatorStateResponse
	for {
		after, err = ctl.GetAllocatorState(wctx, &api.GetAllocatorStateRequest{})
		if err == nil {
			tk.answered = time.Since(killed)
			break
		}
		if wctx.Err() != nil {
			return tk, fmt.Errorf("the new leader's allocator state: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tk.rebuild = after.GetRebuildDuration().AsDuration()
	tk.inconsist = len(after.GetInconsistencies())
	tk.same = after.GetRebuiltJson() == before.GetStateJson()
	tk.bindings = strings.Count(after.GetRebuiltJson(), `"key":`)
	next.Store().View(func(tx store.ReadTx) { tk.tasks = len(tx.Tasks()) })
	if at, ok := marks.first(msgLeader, next.Index, killed); ok {
		tk.elected = at.Sub(killed)
	}
	if at, ok := marks.first(msgRebuilt, next.Index, killed); ok {
		tk.running = at.Sub(killed)
	} else {
		tk.running = tk.answered // the log line changed: the answer bounds it from above
	}
	if err := c.Restart(wctx, leader); err != nil {
		return tk, fmt.Errorf("restart manager %d: %w", leader.Index, err)
	}
	return tk, nil
}

// caughtUp waits until a leader leads every running manager and each has applied its log.
func caughtUp(ctx context.Context, c *managertest.Cluster) (*managertest.Member, error) {
	for {
		if l := c.Leader(); l != nil {
			applied := l.Store().AppliedIndex()
			behind := 0
			for _, m := range c.Members() {
				if s := m.Store(); s == nil || s.AppliedIndex() < applied {
					behind++
				}
			}
			if behind == 0 {
				return l, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("managers never caught up with the leader: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logMarks is a slog handler that keeps the time of the log lines the takeover is timed by,
// per manager (the "manager" attribute managertest gives each manager's logger), and drops
// everything else.
type logMarks struct {
	mu      *sync.Mutex
	manager int
	seen    *[]logMark
}

type logMark struct {
	msg     string
	manager int
	at      time.Time
}

func newLogMarks() *logMarks { return &logMarks{mu: &sync.Mutex{}, manager: -1, seen: &[]logMark{}} }

func (h *logMarks) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *logMarks) Handle(_ context.Context, r slog.Record) error {
	if r.Message != msgRebuilt && r.Message != msgLeader {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.seen = append(*h.seen, logMark{r.Message, h.manager, r.Time})
	return nil
}

func (h *logMarks) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		if a.Key == "manager" {
			c.manager = int(a.Value.Int64())
		}
	}
	return &c
}

func (h *logMarks) WithGroup(string) slog.Handler { c := *h; return &c }

// first is when manager first logged msg after since.
func (h *logMarks) first(msg string, manager int, since time.Time) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range *h.seen {
		if m.msg == msg && m.manager == manager && m.at.After(since) {
			return m.at, true
		}
	}
	return time.Time{}, false
}

func renderAllocator(o allocatorOptions, res allocatorResult) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "### %d tasks on a network, 3 managers, %d simulated nodes\n\n", o.tasks, o.nodes)
	fmt.Fprintf(&b, "Three managers and %d simulated worker nodes in one process on loopback (as in Orchestration). A\n"+
		"network on %s and one service of %d replicas on it are created through the leader's Control\n"+
		"socket; the times run from the CreateService call until every task exists (replicated reconciler),\n"+
		"has its address (the allocator: %d slot bindings and the VIP, and every task's attachment,\n"+
		"committed through raft) and runs (scheduler, dispatcher, agents). The allocator works behind the\n"+
		"reconciler's commits, so the address time includes making the tasks.\n\n",
		o.nodes, benchSubnet, o.tasks, o.tasks)
	fmt.Fprintf(&b, "| all created | all with addresses | addresses/s | all RUNNING | bindings record their nodes |\n|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s |\n\n", ms(res.created), ms(res.addressed), float64(o.tasks)/res.addressed.Seconds(), ms(res.running), ms(res.settled))
	fmt.Fprintf(&b, "Then, %d times, the leader is stopped as a crash would stop it (no leadership transfer) once every\n"+
		"manager has applied its log; the new leader's allocator rebuilds its state from the replicated records\n"+
		"(%d tasks and %d bindings) before it allocates anything. *rebuild* is the new leader's\n"+
		"GetAllocatorState `rebuild_duration`; *allocator running* is from the kill to the new leader's\n"+
		"rebuild log line (election, the log catch-up read, reading the store, the rebuild and its state\n"+
		"dump); *answered* is from the kill to the first GetAllocatorState the new leader answers.\n"+
		"*same state* compares the new leader's rebuilt dump with the old leader's dump before the kill.\n\n",
		len(res.takeovers), o.tasks, o.tasks+1)
	fmt.Fprintf(&b, "| kill | leader elected | allocator running | rebuild | answered | same state | inconsistencies |\n|---:|---:|---:|---:|---:|---|---:|\n")
	var rebuilds []time.Duration
	for i, t := range res.takeovers {
		same := "yes"
		if !t.same {
			same = "**no**"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %d |\n", i+1, ms(t.elected), ms(t.running), ms(t.rebuild), ms(t.answered), same, t.inconsist)
		rebuilds = append(rebuilds, t.rebuild)
	}
	slices.Sort(rebuilds)
	if n := len(rebuilds); n > 0 {
		fmt.Fprintf(&b, "\nRebuild: %s to %s (median %s). Target: under 500 ms.\n", ms(rebuilds[0]), ms(rebuilds[n-1]), ms(rebuilds[n/2]))
	}
	return b.String()
}
