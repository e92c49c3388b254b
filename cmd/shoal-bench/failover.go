package main

// This file measures leader failover with real shoald processes at their
// default raft timing: SIGKILL the leader, then time until a surviving
// manager accepts a write.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/testbed"
)

type shoaldProc struct {
	n    int
	dir  string
	addr string
	sock string
	cmd  *exec.Cmd
	done chan struct{}
	ctl  api.ControlClient
	conn *grpc.ClientConn
	// netns, when set, is the network namespace (a bed node's) shoald runs in.
	netns string
}

type procCluster struct {
	bin   string
	dir   string
	procs []*shoaldProc
}

func (pc *procCluster) start(p *shoaldProc, extra ...string) error {
	args := append([]string{"-d", p.dir, "--hostname", fmt.Sprintf("bench-%d", p.n),
		"--listen-remote-api", p.addr, "--listen-control-api", p.sock, "--executor", "sim"}, extra...)
	log, err := os.OpenFile(filepath.Join(pc.dir, fmt.Sprintf("shoald-%d.log", p.n)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	argv := append([]string{pc.bin}, args...)
	if p.netns != "" {
		argv = testbed.NsenterArgv(p.netns, argv)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start shoald: %w", err)
	}
	p.done = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		log.Close()
		close(p.done)
	}()
	if p.conn == nil {
		conn, err := grpc.NewClient("unix://"+p.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		p.conn, p.ctl = conn, api.NewControlClient(conn)
	}
	return nil
}

func (p *shoaldProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (pc *procCluster) close() {
	for _, p := range pc.procs {
		if p.cmd != nil {
			p.kill()
		}
		if p.conn != nil {
			p.conn.Close()
		}
	}
}

// retry calls f until it succeeds, every 10 ms (the resolution of the
// failover figures, with the 100 ms a write attempt may take).
func retry(ctx context.Context, what string, f func(context.Context) error) error {
	var err error
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
}

// healthy checks that every manager sees three reachable managers and one
// leader, and returns the leader's index.
func (pc *procCluster) healthy(ctx context.Context) (int, error) {
	leader := -1
	for _, p := range pc.procs {
		resp, err := p.ctl.ListNodes(ctx, &api.ListNodesRequest{})
		if err != nil {
			return -1, err
		}
		up, leaders := 0, 0
		for _, n := range resp.Nodes {
			if n.ManagerStatus.GetReachability() == api.Reachability_REACHABILITY_REACHABLE {
				up++
			}
			if n.ManagerStatus.GetLeader() {
				leaders++
				var i int
				if _, err := fmt.Sscanf(n.Description.GetHostname(), "bench-%d", &i); err == nil {
					leader = i
				}
			}
		}
		if up != len(pc.procs) || leaders != 1 {
			return -1, fmt.Errorf("manager %d sees %d reachable, %d leaders", p.n, up, leaders)
		}
	}
	return leader, nil
}

// write sets a label on node bench-0 through p.
func (p *shoaldProc) write(ctx context.Context, value string) error {
	got, err := p.ctl.GetNode(ctx, &api.GetNodeRequest{NodeId: "bench-0"})
	if err != nil {
		return err
	}
	spec := got.Node.Spec
	if spec.Annotations == nil {
		spec.Annotations = &api.Annotations{}
	}
	if spec.Annotations.Labels == nil {
		spec.Annotations.Labels = map[string]string{}
	}
	spec.Annotations.Labels["failover"] = value
	_, err = p.ctl.UpdateNode(ctx, &api.UpdateNodeRequest{NodeId: got.Node.Id, NodeVersion: got.Node.Meta.Version, Spec: spec})
	return err
}

func measureFailover(ctx context.Context, o raftOptions) ([]time.Duration, error) {
	bin, err := filepath.Abs(o.shoald)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("--shoald: %w (run make build first)", err)
	}
	dir, err := os.MkdirTemp("", "shoal-bench-failover")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	pc := &procCluster{bin: bin, dir: dir}
	defer pc.close()
	for i := range 3 {
		pc.procs = append(pc.procs, &shoaldProc{
			n: i, dir: filepath.Join(dir, fmt.Sprint(i)),
			addr: fmt.Sprintf("127.77.0.%d:4242", 10+i),
			sock: filepath.Join(dir, fmt.Sprintf("%d.sock", i)),
		})
	}
	if err := pc.start(pc.procs[0]); err != nil {
		return nil, err
	}
	var token string
	if err := retry(ctx, "first manager serves", func(ctx context.Context) error {
		resp, err := pc.procs[0].ctl.GetCluster(ctx, &api.GetClusterRequest{})
		if err == nil {
			token = resp.Cluster.RootCa.JoinTokens.Manager
		}
		return err
	}); err != nil {
		return nil, err
	}
	for _, p := range pc.procs[1:] {
		if err := pc.start(p, "--join-addr", pc.procs[0].addr, "--join-token", token); err != nil {
			return nil, err
		}
	}
	var times []time.Duration
	for k := range o.kills {
		var leader int
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := retry(wctx, "cluster healthy", func(ctx context.Context) error {
			l, err := pc.healthy(ctx)
			leader = l
			return err
		})
		cancel()
		if err != nil {
			return times, err
		}
		victim := pc.procs[leader]
		killed := time.Now()
		victim.kill()
		wctx, cancel = context.WithTimeout(ctx, 60*time.Second)
		err = retry(wctx, "a write after the kill", func(ctx context.Context) error {
			var last error
			for _, p := range pc.procs {
				if p == victim {
					continue
				}
				wc, c := context.WithTimeout(ctx, 100*time.Millisecond)
				last = p.write(wc, fmt.Sprint(k))
				c()
				if last == nil {
					return nil
				}
			}
			return last
		})
		cancel()
		if err != nil {
			return times, err
		}
		d := time.Since(killed)
		times = append(times, d)
		fmt.Printf("failover %2d: killed bench-%d, first write accepted after %s\n", k+1, leader, d.Round(time.Millisecond))
		if err := pc.start(victim); err != nil {
			return times, err
		}
	}
	slices.Sort(times)
	return times, nil
}
