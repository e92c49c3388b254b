package main

// This file owns `shoal-bench overlay`: on a multi-node bed (internal/testbed), TCP throughput
// between two tasks on different nodes over the VXLAN overlay against two tasks on one node's
// bridge, and the dataplane's convergence after 1 and after 100 tasks move to other nodes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/shoal/shoal/agent/netns"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/testbed"
	"github.com/shoal/shoal/ipam"
	"github.com/shoal/shoal/overlay"
)

type overlayOptions struct {
	out     string
	bin     string
	rounds  int
	seconds time.Duration
	moves   []int
	timeout time.Duration
}

func overlayCommand() *cobra.Command {
	var o overlayOptions
	cmd := &cobra.Command{
		Use:   "overlay",
		Short: "VXLAN against bridge throughput between tasks, and dataplane convergence after moves, on a multi-node bed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.rounds <= 0 || len(o.moves) == 0 || o.seconds <= 0 {
				return fmt.Errorf("--rounds, --moves and --seconds must be positive")
			}
			return runOverlayBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose overlay section is replaced with the figures")
	f.StringVar(&o.bin, "bin", "bin", "folder holding shoald, shoal-echo and the CNI plugins (make build)")
	f.IntVar(&o.rounds, "rounds", 3, "rounds of each measurement")
	f.DurationVar(&o.seconds, "duration", 3*time.Second, "how long each throughput run sends")
	f.IntSliceVar(&o.moves, "moves", []int{1, 100}, "how many tasks move at once, per convergence measurement")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a step after this long")
	return cmd
}

// benchScheme names the bench's beds (testbed.Sweep removes those of killed runs).
const benchScheme = "shoal-bench-"

// overlayResults are the figures of one run.
type overlayResults struct {
	vxlan, bridge []float64 // Gbit/s per round
	// The same paths built with the kernel alone (overlay_kernel.go), in the same rounds.
	kernelVXLAN, kernelBridge []float64
	convergence               map[int][]moveRound
	mtu                       int
}

// moveRound is one convergence measurement: m tasks moved at once.
type moveRound struct {
	drainToConverged   time.Duration // the drain's commit → every node's kernel forwards to every new place
	runningToConverged time.Duration // the last moved task's RUNNING report → the same
}

func runOverlayBench(ctx context.Context, o overlayOptions) error {
	res := overlayResults{convergence: map[int][]moveRound{}}
	err := withBed("overlay", o.bin, func(bed *testbed.Bed, bin, dir string) error {
		if err := benchThroughput(ctx, o, bed, bin, dir, &res); err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
		if err := benchConvergence(ctx, o, bed, bin, dir, &res); err != nil {
			return fmt.Errorf("convergence: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeSection(o.out, "overlay", renderOverlay(o, res))
}

// withBed runs f on a new bed (internal/testbed) and a scratch folder, both removed afterwards;
// bin is the folder of the built binaries, made absolute. Beds left by killed runs are swept
// first.
func withBed(name, bin string, f func(bed *testbed.Bed, bin, dir string) error) error {
	if err := testbed.Check(); err != nil {
		return err
	}
	if removed, err := testbed.Sweep(benchScheme); err != nil {
		return err
	} else if len(removed) > 0 {
		fmt.Printf("%s: removed %d namespaces of killed runs\n", name, len(removed))
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	subnet, err := testbed.PickSubnet(1)
	if err != nil {
		return err
	}
	defer testbed.ReleaseSubnet(subnet)
	bed, err := testbed.New(fmt.Sprintf("%s%d-1", benchScheme, os.Getpid()), subnet)
	if err != nil {
		return err
	}
	defer func() {
		if err := bed.Remove(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	dir, err := os.MkdirTemp("", "shoal-bench-"+name)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return f(bed, bin, dir)
}

// bedCluster starts shoald on bed nodes first..last: the first a manager, the others workers.
func bedCluster(ctx context.Context, bed *testbed.Bed, bin, dir string, first, last int, timeout time.Duration, extra ...string) (*procCluster, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pc := &procCluster{bin: filepath.Join(bin, "shoald"), dir: dir}
	var token string
	for n := first; n <= last; n++ {
		if err := bed.AddNode(n); err != nil {
			pc.close()
			return nil, err
		}
		addr := bed.NodeAddr(n).String() + ":4242"
		p := &shoaldProc{n: n, dir: filepath.Join(dir, fmt.Sprintf("node%d", n)), addr: addr,
			sock: filepath.Join(dir, fmt.Sprintf("node%d.sock", n)), netns: bed.NodeNSPath(n)}
		pc.procs = append(pc.procs, p)
		args := slices.Clone(extra)
		if n != first {
			args = append(args, "--join-addr", pc.procs[0].addr, "--join-token", token)
		}
		if err := pc.start(p, args...); err != nil {
			pc.close()
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err := retry(wctx, fmt.Sprintf("node %d ready", n), func(ctx context.Context) error {
			resp, err := pc.procs[0].ctl.ListNodes(ctx, &api.ListNodesRequest{})
			if err != nil {
				return err
			}
			ready := 0
			for _, nd := range resp.Nodes {
				if nd.GetStatus().GetState() == api.NodeState_NODE_STATE_READY {
					ready++
				}
			}
			if ready != n-first+1 {
				return fmt.Errorf("%d of %d nodes ready", ready, n-first+1)
			}
			if n == first {
				cl, err := pc.procs[0].ctl.GetCluster(ctx, &api.GetClusterRequest{})
				if err != nil {
					return err
				}
				token = cl.GetCluster().GetRootCa().GetJoinTokens().GetWorker()
			}
			return nil
		})
		cancel()
		if err != nil {
			pc.close()
			return nil, err
		}
	}
	return pc, nil
}

// hostOfTask is the bed node index of the node a task runs on (hostname bench-N).
func hostOfTask(nodes map[string]int, t *api.Task) int { return nodes[t.NodeId] }

// nodeIndexes maps node IDs to bed node indexes.
func nodeIndexes(ctx context.Context, ctl api.ControlClient) (map[string]int, error) {
	resp, err := ctl.ListNodes(ctx, &api.ListNodesRequest{})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, n := range resp.Nodes {
		var i int
		if _, err := fmt.Sscanf(n.GetDescription().GetHostname(), "bench-%d", &i); err == nil {
			out[n.Id] = i
		}
	}
	return out, nil
}

// runningTasks lists service svc's tasks observed RUNNING and desired RUNNING.
func runningTasks(ctx context.Context, ctl api.ControlClient, svc string) ([]*api.Task, error) {
	resp, err := ctl.ListTasks(ctx, &api.ListTasksRequest{ServiceIds: []string{svc}})
	if err != nil {
		return nil, err
	}
	var out []*api.Task
	for _, t := range resp.Tasks {
		if t.DesiredState == api.TaskState_TASK_STATE_RUNNING && t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
			out = append(out, t)
		}
	}
	return out, nil
}

// benchThroughput runs a docker cluster on bed nodes 1 and 2 with three echo tasks (two share a
// node) and times TCP transfers between tasks' namespaces: across the overlay and within a node.
func benchThroughput(ctx context.Context, o overlayOptions, bed *testbed.Bed, bin, dir string, res *overlayResults) error {
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	eb, err := startEchoBed(wctx, bed, bin, dir, 1, 2, o.timeout, "bench-tput", "198.19.251.0/24")
	if err != nil {
		return err
	}
	defer eb.close()
	ctl := eb.ctl()
	svc, err := eb.service(wctx, "bench-tput", 3)
	if err != nil {
		return err
	}
	var tasks []*api.Task
	if err := retry(wctx, "3 echo tasks running", func(ctx context.Context) error {
		var err error
		if tasks, err = runningTasks(ctx, ctl, svc.Id); err != nil {
			return err
		}
		if len(tasks) != 3 {
			return fmt.Errorf("%d running", len(tasks))
		}
		return nil
	}); err != nil {
		return err
	}
	nodes, err := nodeIndexes(wctx, ctl)
	if err != nil {
		return err
	}
	// a and c share a node; b is on the other.
	var a, b, c *api.Task
	for _, x := range tasks {
		for _, y := range tasks {
			if x != y && hostOfTask(nodes, x) == hostOfTask(nodes, y) {
				a, c = x, y
			}
		}
	}
	for _, x := range tasks {
		if a != nil && hostOfTask(nodes, x) != hostOfTask(nodes, a) {
			b = x
		}
	}
	if a == nil || b == nil {
		return fmt.Errorf("the 3 tasks are not spread 2 and 1 over the 2 nodes")
	}
	pin := func(t *api.Task) string { return eb.pin(hostOfTask(nodes, t), t) }
	ipOf := func(t *api.Task) string { return strings.Split(t.Networks[0].Address, "/")[0] }
	if res.mtu, err = linkMTU(pin(a), "eth0"); err != nil {
		return err
	}
	k, err := buildKernelReference(wctx, bed, res.mtu)
	if err != nil {
		return fmt.Errorf("kernel reference: %w", err)
	}
	// The two streams of a ratio run back to back; which pair goes first,
	// and which path first within each pair, changes from round to round,
	// so no path always runs first on a machine whose speed drifts.
	streams := []struct {
		what         string
		from, to, ip string
	}{
		{"across nodes", pin(a), pin(b), ipOf(b)},
		{"within a node", pin(a), pin(c), ipOf(c)},
		{"kernel reference, across nodes", k.a, k.b, k.ipB},
		{"kernel reference, within a node", k.a, k.c, k.ipC},
	}
	orders := [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}, {2, 3, 0, 1}}
	for r := 0; r < o.rounds; r++ {
		got := make([]float64, len(streams))
		for _, j := range orders[r%len(orders)] {
			st := streams[j]
			v, err := tcpThroughput(st.from, st.to, st.ip, o.seconds)
			if err != nil {
				return fmt.Errorf("%s: %w", st.what, err)
			}
			got[j] = v
		}
		v, l, kv, kl := got[0], got[1], got[2], got[3]
		fmt.Printf("overlay: round %d: VXLAN %.2f Gbit/s, bridge %.2f Gbit/s (ratio %.2f); kernel alone %.2f, %.2f (ratio %.2f)\n",
			r+1, v, l, v/l, kv, kl, kv/kl)
		res.vxlan, res.bridge = append(res.vxlan, v), append(res.bridge, l)
		res.kernelVXLAN, res.kernelBridge = append(res.kernelVXLAN, kv), append(res.kernelBridge, kl)
	}
	_, _ = ctl.RemoveService(ctx, &api.RemoveServiceRequest{ServiceId: svc.Id})
	return nil
}

// linkMTU is the MTU of link in the namespace at path.
func linkMTU(path, link string) (int, error) {
	var mtu int
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		ifc, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		mtu = ifc.MTU
		return nil
	})
	return mtu, err
}

// tcpThroughput sends from the namespace at from to a listener at ip in the namespace at to for
// d, and returns the receiver's rate in Gbit/s.
func tcpThroughput(from, to, ip string, d time.Duration) (float64, error) {
	var ln net.Listener
	if err := ns.WithNetNSPath(to, func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(ip, "5201"))
		return err
	}); err != nil {
		return 0, fmt.Errorf("listen in %s: %w", to, err)
	}
	defer ln.Close()
	type received struct {
		n       int64
		elapsed time.Duration
		err     error
	}
	got := make(chan received, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- received{err: err}
			return
		}
		defer conn.Close()
		// Read as iperf3 does, 128 KiB at a time: io.Copy into io.Discard reads 8 KiB per call,
		// and the receiver's syscalls would then take the CPU both paths are measured on.
		buf := make([]byte, 128<<10)
		var n int64
		start := time.Now()
		for {
			k, err := conn.Read(buf)
			n += int64(k)
			if err == io.EOF {
				got <- received{n: n, elapsed: time.Since(start)}
				return
			}
			if err != nil {
				got <- received{err: err}
				return
			}
		}
	}()
	var conn net.Conn
	if err := ns.WithNetNSPath(from, func(ns.NetNS) error {
		var err error
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(ip, "5201"), 3*time.Second)
		return err
	}); err != nil {
		return 0, fmt.Errorf("dial from %s: %w", from, err)
	}
	buf := make([]byte, 128<<10)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := conn.Write(buf); err != nil {
			conn.Close()
			return 0, err
		}
	}
	conn.Close()
	r := <-got
	if r.err != nil {
		return 0, r.err
	}
	return float64(r.n) * 8 / r.elapsed.Seconds() / 1e9, nil
}

// benchConvergence runs a sim cluster on bed nodes 4, 5 and 6, each with the network's bridge made
// by hand (the sim's tasks have no namespaces), and times how long after a drain every node's
// kernel forwards each moved task's MAC to its new node.
func benchConvergence(ctx context.Context, o overlayOptions, bed *testbed.Bed, bin, dir string, res *overlayResults) error {
	pc, err := bedCluster(ctx, bed, bin, filepath.Join(dir, "sim"), 4, 6, o.timeout, "--executor", "sim")
	if err != nil {
		return err
	}
	defer pc.close()
	ctl := pc.procs[0].ctl
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	netResp, err := ctl.CreateNetwork(wctx, &api.CreateNetworkRequest{Spec: &api.NetworkSpec{
		Annotations: &api.Annotations{Name: "bench-moves"}, Driver: "overlay",
		Ipam: []*api.IPAMConfig{{Subnet: "198.19.252.0/22"}}}})
	if err != nil {
		return fmt.Errorf("create the network: %w", err)
	}
	netID := netResp.Network.Id
	bridge := "shl" + netID[:10]
	for n := 4; n <= 6; n++ {
		for _, args := range [][]string{{"link", "add", bridge, "type", "bridge"}, {"link", "set", bridge, "up"}} {
			if err := runIn(wctx, bed.NodeNSPath(n), append([]string{"ip"}, args...)...); err != nil {
				return err
			}
		}
	}
	nodes, err := nodeIndexes(wctx, ctl)
	if err != nil {
		return err
	}
	for _, m := range o.moves {
		for r := 0; r < o.rounds; r++ {
			mr, err := timeMoves(wctx, pc, bed, nodes, netID, m, r)
			if err != nil {
				return fmt.Errorf("%d moves, round %d: %w", m, r+1, err)
			}
			fmt.Printf("overlay: %d tasks moved, round %d: converged %s after the drain, %s after the last RUNNING\n",
				m, r+1, mr.drainToConverged.Round(time.Millisecond), mr.runningToConverged.Round(time.Millisecond))
			res.convergence[m] = append(res.convergence[m], mr)
		}
	}
	return nil
}

// setAvailability sets the availability of bed node n.
func setAvailability(ctx context.Context, ctl api.ControlClient, n int, a api.NodeAvailability) error {
	got, err := ctl.GetNode(ctx, &api.GetNodeRequest{NodeId: fmt.Sprintf("bench-%d", n)})
	if err != nil {
		return err
	}
	spec := got.Node.Spec
	spec.Availability = a
	_, err = ctl.UpdateNode(ctx, &api.UpdateNodeRequest{NodeId: got.Node.Id, NodeVersion: got.Node.Meta.Version, Spec: spec})
	return err
}

// timeMoves puts m sim tasks on node 6, waits until every kernel forwards to them, drains node 6
// and times until every kernel forwards each task's MAC to its new node.
func timeMoves(ctx context.Context, pc *procCluster, bed *testbed.Bed, nodes map[string]int, netID string, m, round int) (moveRound, error) {
	ctl := pc.procs[0].ctl
	act, drain := api.NodeAvailability_NODE_AVAILABILITY_ACTIVE, api.NodeAvailability_NODE_AVAILABILITY_DRAIN
	for n, a := range map[int]api.NodeAvailability{4: drain, 5: drain, 6: act} {
		if err := setAvailability(ctx, ctl, n, a); err != nil {
			return moveRound{}, err
		}
	}
	svc, err := ctl.CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Annotations: &api.Annotations{Name: fmt.Sprintf("bench-moves-%d-%d", m, round+1)},
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "sim/bench:1"},
			Networks: []*api.NetworkAttachmentConfig{{Target: netID}}},
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: uint64(m)}},
	}})
	if err != nil {
		return moveRound{}, err
	}
	defer func() {
		_, _ = ctl.RemoveService(context.Background(), &api.RemoveServiceRequest{ServiceId: svc.Service.Id})
	}()
	waitPlaced := func(what string, ok func(*api.Task) bool) ([]*api.Task, error) {
		var tasks []*api.Task
		err := retry(ctx, what, func(ctx context.Context) error {
			var err error
			if tasks, err = runningTasks(ctx, ctl, svc.Service.Id); err != nil {
				return err
			}
			if len(tasks) != m {
				return fmt.Errorf("%d running", len(tasks))
			}
			for _, t := range tasks {
				if !ok(t) {
					return fmt.Errorf("task %s on node %d", t.Id, hostOfTask(nodes, t))
				}
			}
			return convergedOn(bed, netID, nodes, tasks)
		})
		return tasks, err
	}
	if _, err := waitPlaced(fmt.Sprintf("%d tasks on node 6, forwarded to", m), func(t *api.Task) bool { return hostOfTask(nodes, t) == 6 }); err != nil {
		return moveRound{}, err
	}
	for _, n := range []int{4, 5} {
		if err := setAvailability(ctx, ctl, n, act); err != nil {
			return moveRound{}, err
		}
	}
	start := time.Now()
	if err := setAvailability(ctx, ctl, 6, drain); err != nil {
		return moveRound{}, err
	}
	moved, err := waitPlaced(fmt.Sprintf("%d tasks moved off node 6, forwarded to", m), func(t *api.Task) bool { return hostOfTask(nodes, t) != 6 })
	if err != nil {
		return moveRound{}, err
	}
	end := time.Now()
	var lastRunning time.Time
	for _, t := range moved {
		if ts := t.GetStatus().GetTimestamp().AsTime(); ts.After(lastRunning) {
			lastRunning = ts
		}
	}
	return moveRound{drainToConverged: end.Sub(start), runningToConverged: end.Sub(lastRunning)}, nil
}

// convergedOn checks every bed node's kernel: on each node but its own, each task's MAC is
// forwarded to its node's address.
func convergedOn(bed *testbed.Bed, netID string, nodes map[string]int, tasks []*api.Task) error {
	for n := 4; n <= 6; n++ {
		fdb, err := readFDB(bed.NodeNSPath(n), netID)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			host := hostOfTask(nodes, t)
			if host == n {
				continue
			}
			p, err := netip.ParsePrefix(t.Networks[0].Address)
			if err != nil {
				return err
			}
			mac := ipam.MACOf(p.Addr()).String()
			if want := bed.NodeAddr(host).String(); fdb[mac] != want {
				return fmt.Errorf("node %d forwards %s to %q, want %s", n, mac, fdb[mac], want)
			}
		}
	}
	return nil
}

// bedVTEP is the local address of the overlay manager the bench reads kernels with (Read does not
// use it).
var bedVTEP = netip.MustParseAddr("198.18.0.1")

// readFDB reads the network's VXLAN device's unicast FDB (MAC → VTEP) in the namespace at path.
func readFDB(path, netID string) (map[string]string, error) {
	m, err := overlay.New(overlay.Config{LocalVTEP: bedVTEP})
	if err != nil {
		return nil, err
	}
	var k overlay.Kernel
	if err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		var err error
		k, err = m.Read(netID)
		return err
	}); err != nil {
		return nil, err
	}
	if !k.Device.Exists {
		return nil, errors.New("no overlay device yet")
	}
	out := map[string]string{}
	for _, e := range k.FDB {
		out[e.MAC.String()] = e.VTEP.String()
	}
	return out, nil
}

// removeBenchContainers removes the containers of service svc, once the nodes are killed.
func removeBenchContainers(cli *client.Client, svc string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", "dev.shoal.service.name="+svc)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "list the bench's containers:", err)
		return
	}
	for _, c := range list.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			fmt.Fprintln(os.Stderr, "remove a bench container:", err)
		}
	}
}

// unpinAll removes the netns pins left in dir by a node that was killed.
func unpinAll(dir string) {
	pins, _ := netns.List(dir)
	for _, p := range pins {
		if err := netns.Unpin(filepath.Join(dir, p)); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

func renderOverlay(o overlayOptions, res overlayResults) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### VXLAN against bridge throughput, and convergence after moves\n\n")
	fmt.Fprintf(&b, "A bed of network namespaces on this machine (`internal/testbed`), one shoald per node.\n\n")
	fmt.Fprintf(&b, "*Throughput*: two nodes running `--executor docker`, a service of 3 echo tasks (two on one node).\n")
	fmt.Fprintf(&b, "One TCP stream for %s from a task's namespace to a task on the other node (VXLAN, through\n", o.seconds)
	fmt.Fprintf(&b, "both nodes' bridges and the underlay) and to the task on its own node (the bridge alone); tasks'\n")
	fmt.Fprintf(&b, "MTU %d (the underlay's 1500 less VXLAN's 50). *Kernel alone*: in the same rounds, with the same\n", res.mtu)
	fmt.Fprintf(&b, "sender and receiver, the same two paths built in five more bed namespaces (two nodes, three tasks)\n")
	fmt.Fprintf(&b, "with ip(8) and bridge(8) only (a bridge and a VXLAN device per node, static forwarding and neighbour\n")
	fmt.Fprintf(&b, "entries, no shoald, no netfilter on bridged frames): the ratio this machine's kernel gives before\n")
	fmt.Fprintf(&b, "shoal adds anything. The two streams of a ratio run back to back; which pair\n")
	fmt.Fprintf(&b, "goes first, and which path first within a pair, changes from round to round.\n\n")
	fmt.Fprintf(&b, "| round | VXLAN (Gbit/s) | bridge (Gbit/s) | ratio | kernel alone: VXLAN | bridge | ratio |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|---:|\n")
	for i := range res.vxlan {
		fmt.Fprintf(&b, "| %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", i+1, res.vxlan[i], res.bridge[i], res.vxlan[i]/res.bridge[i],
			res.kernelVXLAN[i], res.kernelBridge[i], res.kernelVXLAN[i]/res.kernelBridge[i])
	}
	sv, sb, kv, kb := sum(res.vxlan), sum(res.bridge), sum(res.kernelVXLAN), sum(res.kernelBridge)
	rounds := float64(len(res.vxlan))
	fmt.Fprintf(&b, "\nOn average VXLAN %.2f Gbit/s, bridge %.2f Gbit/s: ratio %.2f (target at least 0.8). Kernel alone:\n", sv/rounds, sb/rounds, sv/sb)
	fmt.Fprintf(&b, "VXLAN %.2f Gbit/s, bridge %.2f Gbit/s, ratio %.2f.\n\n", kv/rounds, kb/rounds, kv/kb)
	fmt.Fprintf(&b, "*Convergence*: three nodes running `--executor sim`, each with the network's bridge made by hand\n")
	fmt.Fprintf(&b, "(sim tasks have no namespaces, so their endpoints are programmed like real ones but nothing else\n")
	fmt.Fprintf(&b, "is made). M tasks run on node 6, every kernel forwarding to them; node 6 is drained; the time runs\n")
	fmt.Fprintf(&b, "until every other node's kernel forwards each moved task's MAC to its new node, polled every few\n")
	fmt.Fprintf(&b, "milliseconds through netlink. *After the drain* counts from the drain request (rescheduling\n")
	fmt.Fprintf(&b, "included); *after RUNNING* from the last moved task's RUNNING report.\n\n")
	fmt.Fprintf(&b, "| moved tasks | round | after the drain | after RUNNING |\n|---:|---:|---:|---:|\n")
	for _, m := range o.moves {
		for i, r := range res.convergence[m] {
			fmt.Fprintf(&b, "| %d | %d | %s | %s |\n", m, i+1, ms(r.drainToConverged), ms(r.runningToConverged))
		}
	}
	fmt.Fprintf(&b, "\nMeasured %s on %s, with `go run ./cmd/shoal-bench overlay --rounds %d --duration %s`.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), machine(), o.rounds, o.seconds)
	return b.String()
}

// sum adds xs up.
func sum(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}
