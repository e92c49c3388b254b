package e2e

// This file owns the process harness: building the binaries once, starting
// and killing shoald processes, and the clients tests use to reach them.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal/shoal/agent/netns"
	"github.com/shoal/shoal/api"
)

var binDir string

// atExit holds what tests leave for the end of the run (images built once and shared).
var atExit []func()

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shoal-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/shoal/shoal/cmd/shoald", "github.com/shoal/shoal/cmd/shoalctl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build shoald and shoalctl: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	for _, f := range atExit {
		f()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// testNet hands each test its own loopback /24: 127.<run>.<test>.0.
var testNet atomic.Int32

// cluster is a set of shoald processes of one test.
type cluster struct {
	t      *testing.T
	dir    string
	prefix string // 127.a.b., or 198.18.B. on a test bed
	port   int
	extra  []string
	bed    *bed // set by newBedCluster: every node runs in its own network namespace (testbed_test.go)

	mu    sync.Mutex
	nodes map[int]*proc
}

type proc struct {
	n    int
	dir  string
	addr string
	sock string
	cmd  *exec.Cmd
	done chan struct{}
	log  *logBuffer // shared by every run of node n
}

// logBuffer collects a process's output; safe to read while it writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newCluster prepares a test's cluster; extra flags go to every shoald.
func newCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	n := testNet.Add(1)
	c := &cluster{
		t:      t,
		dir:    t.TempDir(),
		prefix: freeLoopbackPrefix(t, n),
		port:   4242,
		extra:  extra,
		nodes:  make(map[int]*proc),
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.nodes {
			p.kill()
			// A node killed while it ran real tasks leaves their netns pins mounted in its
			// state folder, which the test's folder removal cannot delete.
			pins, _ := netns.List(filepath.Join(p.dir, "netns"))
			for _, pin := range pins {
				if err := netns.Unpin(filepath.Join(p.dir, "netns", pin)); err != nil {
					t.Errorf("remove node %d's netns pin: %v", p.n, err)
				}
			}
		}
		if t.Failed() {
			for i, p := range c.nodes {
				t.Logf("--- shoald %d log (last 4 KiB) ---\n%s", i, tail(p.log.String(), 4096))
			}
		}
	})
	return c
}

// freeLoopbackPrefix picks the test's loopback /24, 127.<run>.<n>.0, with a run octet whose
// first address is free on port 4242: two test processes on one machine (two developers, or
// CI beside a local run) then do not collide, as a pid-derived octet sometimes did.
func freeLoopbackPrefix(t *testing.T, n int32) string {
	t.Helper()
	start := os.Getpid() % 100
	for i := 0; i < 100; i++ {
		prefix := fmt.Sprintf("127.%d.%d.", 100+(start+i)%100, n)
		l, err := net.Listen("tcp", prefix+"1:4242")
		if err != nil {
			continue
		}
		_ = l.Close()
		return prefix
	}
	t.Fatalf("no free loopback prefix for test %d on port 4242", n)
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (c *cluster) addr(n int) string { return fmt.Sprintf("%s%d:%d", c.prefix, n, c.port) }

// start starts node n (fresh or from its state folder) with extra flags.
func (c *cluster) start(n int, flags ...string) *proc {
	c.t.Helper()
	dir := filepath.Join(c.dir, fmt.Sprintf("node%d", n))
	p := &proc{n: n, dir: dir, addr: c.addr(n), sock: filepath.Join(dir, "control.sock"), done: make(chan struct{}), log: &logBuffer{}}
	if old, ok := c.nodes[n]; ok {
		p.log = old.log
	}
	args := append([]string{
		"-d", dir,
		"--hostname", fmt.Sprintf("node-%d", n),
		"--listen-remote-api", p.addr,
		"--listen-control-api", p.sock,
		"--log-level", "debug",
		// Tasks run in memory: these tests are about orchestration.
		"--executor", "sim",
	}, c.extra...)
	args = append(args, flags...)
	p.cmd = exec.Command(filepath.Join(binDir, "shoald"), args...)
	if c.bed != nil {
		c.enterNode(n, p.cmd)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start shoald %d: %v", n, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	c.mu.Lock()
	c.nodes[n] = p
	c.mu.Unlock()
	return p
}

func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// pause stops the process (SIGSTOP): it keeps its state and its sim
// tasks, but answers nothing, as a node cut off from the network would.
func (p *proc) pause() { _ = p.cmd.Process.Signal(syscall.SIGSTOP) }

// resume continues a paused process (SIGCONT).
func (p *proc) resume() { _ = p.cmd.Process.Signal(syscall.SIGCONT) }

// exited tells whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (c *cluster) node(n int) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[n]
}

// control returns a Control client on node n's unix socket.
func (c *cluster) control(n int) api.ControlClient {
	c.t.Helper()
	conn, err := grpc.NewClient("unix://"+c.node(n).sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatalf("dial node %d's control socket: %v", n, err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return api.NewControlClient(conn)
}

// shoalctl runs shoalctl against node n and returns its output.
func (c *cluster) shoalctl(n int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "shoalctl"), append([]string{"--socket", c.node(n).sock}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// eventually retries f until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// initManagers starts node 1 as a new cluster and joins nodes 2..n as
// managers, waiting until every one is in raft and reachable.
func (c *cluster) initManagers(n int) {
	c.t.Helper()
	c.start(1)
	eventually(c.t, 30*time.Second, "node 1 serves", func() error {
		_, err := c.control(1).GetCluster(ctxT(c.t, 5*time.Second), &api.GetClusterRequest{})
		return err
	})
	token := c.joinToken(1, api.NodeRole_NODE_ROLE_MANAGER)
	for i := 2; i <= n; i++ {
		c.start(i, "--join-addr", c.addr(1), "--join-token", token)
		eventually(c.t, 30*time.Second, fmt.Sprintf("node %d serves", i), func() error {
			_, err := c.control(i).GetCluster(ctxT(c.t, 5*time.Second), &api.GetClusterRequest{})
			return err
		})
	}
	c.waitManagers(n, n)
}

func (c *cluster) joinToken(n int, role api.NodeRole) string {
	c.t.Helper()
	resp, err := c.control(n).GetCluster(ctxT(c.t, 10*time.Second), &api.GetClusterRequest{})
	if err != nil {
		c.t.Fatalf("get cluster: %v", err)
	}
	if role == api.NodeRole_NODE_ROLE_MANAGER {
		return resp.Cluster.RootCa.JoinTokens.Manager
	}
	return resp.Cluster.RootCa.JoinTokens.Worker
}

// waitManagers waits until every running manager agrees there are total managers of
// which reachable are reachable, with one leader.
func (c *cluster) waitManagers(total, reachable int) {
	c.t.Helper()
	eventually(c.t, 60*time.Second, fmt.Sprintf("%d managers, %d reachable", total, reachable), func() error {
		for _, p := range c.liveNodes() {
			if _, err := os.Stat(p.sock); err != nil {
				continue // a worker: no Control socket
			}
			resp, err := c.control(p.n).ListNodes(ctxT(c.t, 5*time.Second), &api.ListNodesRequest{})
			if err != nil {
				return fmt.Errorf("node %d: %w", p.n, err)
			}
			managers, up, leaders := 0, 0, 0
			for _, node := range resp.Nodes {
				ms := node.ManagerStatus
				if ms == nil {
					continue
				}
				managers++
				if ms.Reachability == api.Reachability_REACHABILITY_REACHABLE {
					up++
				}
				if ms.Leader {
					leaders++
				}
			}
			if managers != total || up != reachable || leaders != 1 {
				return fmt.Errorf("node %d sees %d managers, %d reachable, %d leaders", p.n, managers, up, leaders)
			}
		}
		return nil
	})
}

func (c *cluster) liveNodes() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*proc
	for _, p := range c.nodes {
		if !p.exited() {
			out = append(out, p)
		}
	}
	return out
}

// leader returns the process number of the current leader, as node n sees it.
func (c *cluster) leader(n int) (int, error) {
	resp, err := c.control(n).ListNodes(ctxT(c.t, 5*time.Second), &api.ListNodesRequest{})
	if err != nil {
		return 0, err
	}
	for _, node := range resp.Nodes {
		if node.ManagerStatus.GetLeader() {
			var i int
			if _, err := fmt.Sscanf(node.Description.GetHostname(), "node-%d", &i); err != nil {
				return 0, err
			}
			return i, nil
		}
	}
	return 0, fmt.Errorf("node %d knows no leader", n)
}

// setLabel writes a label on the node with the given hostname through node
// n's Control API.
func (c *cluster) setLabel(ctx context.Context, n int, hostname, key, value string) error {
	ctl := c.control(n)
	got, err := ctl.GetNode(ctx, &api.GetNodeRequest{NodeId: hostname})
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
	spec.Annotations.Labels[key] = value
	_, err = ctl.UpdateNode(ctx, &api.UpdateNodeRequest{NodeId: got.Node.Id, NodeVersion: got.Node.Meta.Version, Spec: spec})
	return err
}

func (c *cluster) labels(ctx context.Context, n int, hostname string) (map[string]string, error) {
	got, err := c.control(n).GetNode(ctx, &api.GetNodeRequest{NodeId: hostname})
	if err != nil {
		return nil, err
	}
	return got.Node.Spec.GetAnnotations().GetLabels(), nil
}

func hasAll(have map[string]string, want map[string]string) error {
	var missing []string
	for k, v := range want {
		if have[k] != v {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d labels missing, e.g. %s", len(missing), strings.Join(missing[:min(3, len(missing))], ","))
	}
	return nil
}
