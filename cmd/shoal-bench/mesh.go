package main

// This file owns `shoal-bench mesh`: on a multi-node bed, requests per second through a service
// VIP against straight to the service's task IPs, side by side, from a client task on another
// node. Each request is an HTTP GET on a new TCP connection (shoal-echo answers its identity),
// so every request pays the VIP's translation: the load balancer picks a backend per connection.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/testbed"
)

type meshOptions struct {
	out      string
	bin      string
	rounds   int
	duration time.Duration
	clients  int
	timeout  time.Duration
}

func meshCommand() *cobra.Command {
	var o meshOptions
	cmd := &cobra.Command{
		Use:   "mesh",
		Short: "Requests per second through a service VIP against straight to its task IPs, on a multi-node bed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.rounds <= 0 || o.duration <= 0 || o.clients <= 0 {
				return fmt.Errorf("--rounds, --duration and --clients must be positive")
			}
			return runMeshBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose mesh section is replaced with the figures")
	f.StringVar(&o.bin, "bin", "bin", "folder holding shoald, shoal-echo and the CNI plugins (make build)")
	f.IntVar(&o.rounds, "rounds", 3, "rounds of each measurement (VIP and direct alternate)")
	f.DurationVar(&o.duration, "duration", 5*time.Second, "how long each measurement sends requests")
	f.IntVar(&o.clients, "clients", 8, "concurrent clients, each one request at a time")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a step after this long")
	return cmd
}

func runMeshBench(ctx context.Context, o meshOptions) error {
	var vip, direct []float64
	err := withBed("mesh", o.bin, func(bed *testbed.Bed, bin, dir string) error {
		var err error
		vip, direct, err = benchVIPRequests(ctx, o, bed, bin, dir)
		return err
	})
	if err != nil {
		return err
	}
	return writeSection(o.out, "mesh", renderMesh(o, vip, direct))
}

// benchVIPRequests runs a docker cluster on bed nodes 1 to 3: a service of 3 echo tasks and a
// client task, and measures requests per second from the client through the VIP and straight to
// the tasks, round after round.
func benchVIPRequests(ctx context.Context, o meshOptions, bed *testbed.Bed, bin, dir string) (vip, direct []float64, err error) {
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	eb, err := startEchoBed(wctx, bed, bin, dir, 1, 3, o.timeout, "bench-vip", "198.19.250.0/24")
	if err != nil {
		return nil, nil, err
	}
	defer eb.close()
	ctl := eb.ctl()
	svc, err := eb.service(wctx, "bench-vip", 3)
	if err != nil {
		return nil, nil, err
	}
	clientSvc, err := eb.service(wctx, "bench-cli", 1)
	if err != nil {
		return nil, nil, err
	}
	var backends, clients []*api.Task
	if err := retry(wctx, "3 echo tasks and a client running", func(ctx context.Context) error {
		if backends, err = runningTasks(ctx, ctl, svc.Id); err != nil {
			return err
		}
		if clients, err = runningTasks(ctx, ctl, clientSvc.Id); err != nil {
			return err
		}
		if len(backends) != 3 || len(clients) != 1 {
			return fmt.Errorf("%d and %d running", len(backends), len(clients))
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	nodes, err := nodeIndexes(wctx, ctl)
	if err != nil {
		return nil, nil, err
	}
	from := eb.pin(hostOfTask(nodes, clients[0]), clients[0])
	var targets []string
	for _, t := range backends {
		targets = append(targets, net.JoinHostPort(strings.Split(t.Networks[0].Address, "/")[0], "8080"))
	}
	var vipAddr string
	if err := retry(wctx, "the VIP bound and balancing", func(ctx context.Context) error {
		resp, err := ctl.ListBindings(ctx, &api.ListBindingsRequest{ServiceIds: []string{svc.Id}})
		if err != nil {
			return err
		}
		for _, b := range resp.Bindings {
			if b.Kind == api.IPBinding_KIND_VIP {
				vipAddr = net.JoinHostPort(strings.Split(b.Address, "/")[0], "8080")
			}
		}
		if vipAddr == "" {
			return fmt.Errorf("no VIP yet")
		}
		// Every backend answers through the VIP before measuring.
		seen := map[string]bool{}
		for i := 0; i < 60 && len(seen) < 3; i++ {
			id, err := httpGetFrom(from, vipAddr)
			if err != nil {
				return err
			}
			seen[id] = true
		}
		if len(seen) < 3 {
			return fmt.Errorf("%d of 3 backends answered through the VIP", len(seen))
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	fmt.Printf("mesh: client on node %d, VIP %s, backends %v\n", hostOfTask(nodes, clients[0]), vipAddr, targets)
	for r := 0; r < o.rounds; r++ {
		// Which goes first alternates, so neither always runs on a warmer (or noisier) machine.
		var v, d float64
		measure := []func() error{
			func() (err error) {
				if err := setPortRange(from, vipPorts); err != nil {
					return err
				}
				v, err = requestRate(from, []string{vipAddr}, o.clients, o.duration)
				return err
			},
			func() (err error) {
				if err := setPortRange(from, directPorts); err != nil {
					return err
				}
				d, err = requestRate(from, targets, o.clients, o.duration)
				return err
			},
		}
		if r%2 == 1 {
			slices.Reverse(measure)
		}
		for _, m := range measure {
			if err := m(); err != nil {
				return nil, nil, err
			}
		}
		fmt.Printf("mesh: round %d: VIP %.0f req/s, direct %.0f req/s (ratio %.2f)\n", r+1, v, d, v/d)
		vip, direct = append(vip, v), append(direct, d)
	}
	return vip, direct, nil
}

// The client's ephemeral ports for each measurement. A connection through the VIP to a task has
// the same reply tuple as a direct one from the same client port to that task; at thousands of
// connections a second the client reuses its ports within conntrack's TIME_WAIT (120 s), and
// conntrack cannot give the VIP connection a tuple of its own (destination NAT keeps ports), so
// it drops its SYNs. Separate ranges keep the two measurements from colliding; a client that only
// uses the VIP, or only a task, never meets this.
const (
	vipPorts    = "20000 39999"
	directPorts = "40000 60999"
)

// setPortRange sets the ephemeral port range of the namespace at path.
func setPortRange(path, ports string) error {
	return ns.WithNetNSPath(path, func(ns.NetNS) error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte(ports), 0o644)
	})
}

// httpGetFrom sends one GET / to addr on a new connection from the namespace at path and returns
// the answer's body.
func httpGetFrom(path, addr string) (string, error) {
	var body string
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		var err error
		body, err = httpGet(addr)
		return err
	})
	return body, err
}

// httpGet sends GET / to addr on a new connection, in the calling thread's namespace.
func httpGet(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		return "", err
	}
	resp := string(b)
	if !strings.HasPrefix(resp, "HTTP/1.1 200") {
		return "", fmt.Errorf("answer %q", resp)
	}
	_, body, _ := strings.Cut(resp, "\r\n\r\n")
	return body, nil
}

// requestRate runs clients loops of one request at a time from the namespace at path, each
// cycling over targets, for d, and returns the requests answered per second. A failed request
// fails the measurement.
func requestRate(path string, targets []string, clients int, d time.Duration) (float64, error) {
	var answered atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	deadline := start.Add(d)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The loop runs on a thread locked in the namespace: each dial makes its socket
			// there.
			err := ns.WithNetNSPath(path, func(ns.NetNS) error {
				for i := c; time.Now().Before(deadline); i++ {
					if _, err := httpGet(targets[i%len(targets)]); err != nil {
						return err
					}
					answered.Add(1)
				}
				return nil
			})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(answered.Load()) / time.Since(start).Seconds(), nil
}

func renderMesh(o meshOptions, vip, direct []float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Requests per second through a VIP against straight to the tasks\n\n")
	fmt.Fprintf(&b, "Three nodes running `--executor docker`: a service of 3 shoal-echo tasks and a client task. The client\n")
	fmt.Fprintf(&b, "sends HTTP GETs, each on a new TCP connection, %d at a time for %s per measurement: through the\n", o.clients, o.duration)
	fmt.Fprintf(&b, "service's VIP (nftables DNAT on the client's node, per connection), then straight to the 3 task IPs in\n")
	fmt.Fprintf(&b, "turn; %d rounds, which goes first alternating. The two use separate ephemeral port ranges (see\n", o.rounds)
	fmt.Fprintf(&b, "`vipPorts` in cmd/shoal-bench/mesh.go: a VIP connection and a direct one from the same client port\n")
	fmt.Fprintf(&b, "to the same task would share a conntrack reply tuple).\n\n")
	fmt.Fprintf(&b, "| round | VIP (req/s) | direct (req/s) | ratio |\n|---|---|---|---|\n")
	for i := range vip {
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.2f |\n", i+1, vip[i], direct[i], vip[i]/direct[i])
	}
	sumV, sumD := 0.0, 0.0
	for i := range vip {
		sumV += vip[i]
		sumD += direct[i]
	}
	ratios := make([]float64, len(vip))
	for i := range vip {
		ratios[i] = vip[i] / direct[i]
	}
	fmt.Fprintf(&b, "| all | %.0f | %.0f | **%.2f** (%.2f–%.2f) |\n\n", sumV/float64(len(vip)), sumD/float64(len(vip)), sumV/sumD,
		slices.Min(ratios), slices.Max(ratios))
	fmt.Fprintf(&b, "Target: ratio at least 0.9. Command: `go run ./cmd/shoal-bench mesh --rounds %d --duration %s --clients %d`.\n",
		o.rounds, o.duration, o.clients)
	return b.String()
}
