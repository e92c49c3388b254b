package main

// This file owns `shoal-bench containers`: on this machine's Docker engine, the time from a
// service create to all of its tasks RUNNING (each a sandbox, a CNI attachment to a shoal network
// and a container), for 1 and for 30 replicas, side by side with the same number of sequential
// `docker run -d` of the same image.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/dockerimage"
)

type containersOptions struct {
	out      string
	bin      string
	replicas []int
	rounds   int
	timeout  time.Duration
}

func containersCommand() *cobra.Command {
	var o containersOptions
	cmd := &cobra.Command{
		Use:   "containers",
		Short: "Service create to RUNNING with real containers, against sequential docker run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.rounds <= 0 || len(o.replicas) == 0 {
				return fmt.Errorf("--rounds and --replicas must be positive")
			}
			return runContainersBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose containers section is replaced with the figures")
	f.StringVar(&o.bin, "bin", "bin", "folder holding shoald, shoal-echo and the CNI plugins (make build)")
	f.IntSliceVar(&o.replicas, "replicas", []int{1, 30}, "replica counts to time")
	f.IntVar(&o.rounds, "rounds", 3, "rounds per replica count (shoal and docker run alternate)")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a step after this long")
	return cmd
}

// containersRound is one timed round of one replica count.
type containersRound struct {
	replicas  int
	shoal     time.Duration // service create → all RUNNING
	dockerRun time.Duration // n sequential docker run -d
}

const benchImage = "shoal-bench-echo:latest"

func runContainersBench(ctx context.Context, o containersOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	cli, done, err := echoImage(ctx, bin, o.timeout)
	if err != nil {
		return err
	}
	defer done()

	dir, err := os.MkdirTemp("", "shoal-bench-containers")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pc := &procCluster{bin: filepath.Join(bin, "shoald"), dir: dir}
	p := &shoaldProc{n: 0, dir: filepath.Join(dir, "node0"), addr: "127.0.0.1:4299", sock: filepath.Join(dir, "control.sock")}
	pc.procs = append(pc.procs, p)
	defer pc.close()
	if err := pc.start(p, "--executor", "docker", "--cni-bin-dir", filepath.Join(bin, "cni"), "--pull", "never"); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := retry(wctx, "the node is ready", func(ctx context.Context) error {
		resp, err := p.ctl.ListNodes(ctx, &api.ListNodesRequest{})
		if err != nil {
			return err
		}
		if len(resp.Nodes) != 1 || resp.Nodes[0].GetStatus().GetState() != api.NodeState_NODE_STATE_READY {
			return fmt.Errorf("node not ready: %v", resp.Nodes)
		}
		return nil
	}); err != nil {
		return err
	}
	netResp, err := p.ctl.CreateNetwork(wctx, &api.CreateNetworkRequest{Spec: &api.NetworkSpec{
		Annotations: &api.Annotations{Name: "bench-net"}, Driver: "overlay",
		Ipam: []*api.IPAMConfig{{Subnet: "198.19.250.0/24"}}}})
	if err != nil {
		return fmt.Errorf("create the network: %w", err)
	}
	defer removeFromHost(filepath.Join(bin, "cni"), dir, netResp.Network)

	// A first task builds the node's pause image (once per shoald binary): not timed.
	if _, err := timeService(ctx, p, netResp.Network.Id, 1, -1, o.timeout); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var rounds []containersRound
	for _, n := range o.replicas {
		for r := 0; r < o.rounds; r++ {
			round := containersRound{replicas: n}
			if round.shoal, err = timeService(ctx, p, netResp.Network.Id, n, r, o.timeout); err != nil {
				return err
			}
			if round.dockerRun, err = timeDockerRun(ctx, cli, n, o.timeout); err != nil {
				return err
			}
			fmt.Printf("containers: %d replicas, round %d: shoal %s, docker run %s\n", n, r+1, round.shoal.Round(time.Millisecond), round.dockerRun.Round(time.Millisecond))
			rounds = append(rounds, round)
		}
	}
	return writeSection(o.out, "containers", renderContainers(o, rounds))
}

// echoImage connects to the engine and builds benchImage from bin's shoal-echo, FROM scratch;
// done removes the image and closes the client.
func echoImage(ctx context.Context, bin string, timeout time.Duration) (cli *client.Client, done func(), err error) {
	cli, err = client.New(client.FromEnv)
	if err != nil {
		return nil, nil, fmt.Errorf("docker client: %w", err)
	}
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = dockerimage.Build(bctx, cli, benchImage, map[string]string{"/shoal-echo": filepath.Join(bin, "shoal-echo")}, []string{"/shoal-echo"}, map[string]string{"dev.shoal.bench": "true"})
	if err != nil {
		cli.Close()
		return nil, nil, fmt.Errorf("build the echo image (run make build first): %w", err)
	}
	return cli, func() {
		_, _ = cli.ImageRemove(context.Background(), benchImage, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		cli.Close()
	}, nil
}

// timeService creates a service of n replicas of the echo image on the network, times it until
// every task is RUNNING, then removes it and waits until its containers are gone.
func timeService(ctx context.Context, p *shoaldProc, network string, n, round int, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	name := fmt.Sprintf("bench-%d-%d", n, round+1)
	start := time.Now()
	resp, err := p.ctl.CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Annotations: &api.Annotations{Name: name},
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: benchImage},
			Networks: []*api.NetworkAttachmentConfig{{Target: network}}},
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: uint64(n)}},
	}})
	if err != nil {
		return 0, fmt.Errorf("create service %s: %w", name, err)
	}
	for {
		tasks, err := p.ctl.ListTasks(ctx, &api.ListTasksRequest{ServiceIds: []string{resp.Service.Id}})
		if err != nil {
			return 0, err
		}
		running := 0
		for _, t := range tasks.Tasks {
			switch t.GetStatus().GetState() {
			case api.TaskState_TASK_STATE_RUNNING:
				running++
			case api.TaskState_TASK_STATE_FAILED, api.TaskState_TASK_STATE_REJECTED:
				return 0, fmt.Errorf("service %s: task %s %s: %s %s", name, t.Id, t.Status.State, t.Status.Message, t.Status.Err)
			}
		}
		if running == n {
			break
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("service %s: %d of %d RUNNING: %w", name, running, n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	took := time.Since(start)
	if _, err := p.ctl.RemoveService(ctx, &api.RemoveServiceRequest{ServiceId: resp.Service.Id}); err != nil {
		return 0, fmt.Errorf("remove service %s: %w", name, err)
	}
	return took, retry(ctx, "the service's containers removed", func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "label=dev.shoal.service.name="+name).Output()
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(string(out)); s != "" {
			return fmt.Errorf("containers left: %s", s)
		}
		return nil
	})
}

// timeDockerRun times n sequential `docker run -d` of the echo image, as an operator would type
// them (the CLI, on the engine's default bridge network), then removes the containers.
func timeDockerRun(ctx context.Context, cli *client.Client, n int, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var ids []string
	defer func() {
		for _, id := range ids {
			_, _ = cli.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		out, err := exec.CommandContext(ctx, "docker", "run", "-d", "--label", "dev.shoal.bench=true", benchImage).Output()
		if err != nil {
			return 0, fmt.Errorf("docker run: %w", err)
		}
		ids = append(ids, strings.TrimSpace(string(out)))
	}
	return time.Since(start), nil
}

func renderContainers(o containersOptions, rounds []containersRound) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Service create to RUNNING with real containers, against `docker run`\n\n")
	fmt.Fprintf(&b, "One shoald (manager and worker, `--executor docker`) on this machine's Docker engine. *shoal* is\n")
	fmt.Fprintf(&b, "from the CreateService call until every task is RUNNING: each task is a sandbox container, a CNI\n")
	fmt.Fprintf(&b, "attachment to a shoal network (shoal-bridge and shoal-ipam, with its sticky address) and the task's\n")
	fmt.Fprintf(&b, "container. *docker run* is the same number of `docker run -d` of the same image, one after the other,\n")
	fmt.Fprintf(&b, "on the engine's default bridge network. The two alternate, %d rounds per count, after one untimed task\n", o.rounds)
	fmt.Fprintf(&b, "that builds the node's pause image (once per shoald binary).\n\n")
	fmt.Fprintf(&b, "| replicas | round | shoal | docker run | ratio |\n|---:|---:|---:|---:|---:|\n")
	per := map[int][]containersRound{}
	for _, r := range rounds {
		per[r.replicas] = append(per[r.replicas], r)
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %.2f |\n", r.replicas, len(per[r.replicas]), ms(r.shoal), ms(r.dockerRun), r.shoal.Seconds()/r.dockerRun.Seconds())
	}
	b.WriteString("\n")
	for _, n := range o.replicas {
		var s, d time.Duration
		for _, r := range per[n] {
			s += r.shoal
			d += r.dockerRun
		}
		fmt.Fprintf(&b, "%d replicas: shoal %s, docker run %s on average (ratio %.2f).\n", n, ms(s/time.Duration(len(per[n]))), ms(d/time.Duration(len(per[n]))), s.Seconds()/d.Seconds())
	}
	fmt.Fprintf(&b, "Targets: one task at most 1.5× one `docker run`; 30 replicas faster than 30 sequential `docker run`s.\n\n")
	fmt.Fprintf(&b, "Measured %s on %s, with `go run ./cmd/shoal-bench containers --rounds %d`.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), machine(), o.rounds)
	return b.String()
}

// removeFromHost takes the benchmark's network off the host: its bridge and the firewall rules
// shoal-bridge made for it.
func removeFromHost(cniBin, dir string, n *api.Network) {
	m, err := cni.New(cni.Config{BinDirs: []string{cniBin}, CacheDir: filepath.Join(dir, "cleanup-cni")})
	if err == nil {
		err = m.RemoveNetwork(context.Background(), n)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "containers: take network %s off the host: %v\n", n.Id, err)
	}
}
