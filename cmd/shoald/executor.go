package main

// This file owns the executor flags: which executor runs the node's tasks,
// the sim executor's settings, the engine labels, and the one executor a
// node creates for its whole life (runRole hands it to every agent, so a
// role switch does not stop tasks).

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/agent/dataplane"
	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/exec/docker"
	"github.com/shoal/shoal/agent/exec/sim"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/units"
)

// parseExecutorFlags checks the executor flags and fills the values parsed
// from them (memory size, engine labels).
func (c *nodeConfig) parseExecutorFlags() error {
	switch c.executor {
	case "sim", "docker":
	default:
		return fmt.Errorf("--executor: %q is not an executor (sim or docker)", c.executor)
	}
	if _, err := docker.ParsePullPolicy(c.pull); err != nil {
		return fmt.Errorf("--pull: %w", err)
	}
	if c.cniBinDir == "" {
		return fmt.Errorf("--cni-bin-dir: empty; the folder holding shoal-bridge and shoal-ipam (default %s)", cni.DefaultBinDir)
	}
	if err := c.checkLBBackend(); err != nil {
		return err
	}
	if c.repairPeriod < 0 {
		return fmt.Errorf("--dataplane-repair-period: %s is negative", c.repairPeriod)
	}
	if c.endpointGrace < 0 {
		return fmt.Errorf("--endpoint-grace: %s is negative", c.endpointGrace)
	}
	if c.networkMTU != 0 && (c.networkMTU < 68 || c.networkMTU > 65535) {
		return fmt.Errorf("--network-mtu: %d is not an MTU (68 to 65535; 0: the underlay's less 50)", c.networkMTU)
	}
	switch {
	case c.simStartDelay < 0:
		return fmt.Errorf("--sim-start-delay: %s is negative", c.simStartDelay)
	case c.simFailureRate < 0 || c.simFailureRate > 1 || math.IsNaN(c.simFailureRate):
		return fmt.Errorf("--sim-failure-rate: %g is not between 0 and 1", c.simFailureRate)
	case c.simCPUs < 0 || math.IsNaN(c.simCPUs) || math.IsInf(c.simCPUs, 0):
		return fmt.Errorf("--sim-cpus: %g is not a CPU count (0 means the host's)", c.simCPUs)
	}
	c.simMemoryBytes = 0
	if c.simMemory != "" {
		n, err := units.ParseBytes(c.simMemory)
		switch {
		case err != nil:
			return fmt.Errorf("--sim-memory: %q: %w", c.simMemory, err)
		case n == 0:
			return fmt.Errorf("--sim-memory: %q: a node offers some memory; leave the flag out for the host's", c.simMemory)
		}
		c.simMemoryBytes = n
	}
	c.labels = nil
	for _, kv := range c.engineLabels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("--engine-label: %q is not KEY=VALUE", kv)
		}
		if c.labels == nil {
			c.labels = make(map[string]string)
		}
		c.labels[k] = v
	}
	return nil
}

// nodeExecutor is the node's executor and, with the docker executor, its CNI manager, which the
// agent feeds the networks of its assignments and asks for the plugins' status.
type nodeExecutor struct {
	exec.Executor
	cni *cni.Manager          // nil with the sim executor
	dp  *dataplane.Controller // nil without a data-path address
}

// newExecutor creates the node's executor from the parsed flags, for the node nodeID whose
// data-path address is vtep.
func (c *nodeConfig) newExecutor(nodeID string, vtep netip.Addr) (nodeExecutor, error) {
	if c.executor == "docker" {
		return c.newDockerExecutor(nodeID, vtep)
	}
	e, err := sim.New(sim.Config{
		StartDelay:  c.simStartDelay,
		FailureRate: c.simFailureRate,
		NanoCPUs:    int64(math.Round(c.simCPUs * 1e9)),
		MemoryBytes: c.simMemoryBytes,
		// The agent reports the flags' labels; the sim has none of its own.
	})
	if err != nil {
		return nodeExecutor{}, fmt.Errorf("create the sim executor: %w", err)
	}
	// The sim's tasks have no namespaces, so no bridge is made for them and the overlay is left
	// alone; the dataplane still follows the endpoint views, and programs a network whose bridge
	// exists on the node (as benchmarks of the dataplane make one by hand).
	var dp *dataplane.Controller
	if vtep.IsValid() && !vtep.IsLoopback() {
		if dp, err = newDataplane(vtep, c.networkMTUFor(vtep), nodeMesh{}, c.repairPeriod, c.logger.With("component", "dataplane")); err != nil {
			return nodeExecutor{}, err
		}
	}
	return nodeExecutor{Executor: e, dp: dp}, nil
}

// newDockerExecutor creates the Docker executor, whose sandboxes the CNI manager attaches.
func (c *nodeConfig) newDockerExecutor(nodeID string, vtep netip.Addr) (nodeExecutor, error) {
	mtu := c.networkMTUFor(vtep)
	cm, err := cni.New(cni.Config{BinDirs: filepath.SplitList(c.cniBinDir), CacheDir: filepath.Join(c.stateDir, "cni"),
		MTU: mtu, Log: c.logger.With("component", "cni")})
	if err != nil {
		return nodeExecutor{}, fmt.Errorf("create the CNI manager: %w", err)
	}
	var m nodeMesh
	if vtep.IsValid() && !vtep.IsLoopback() {
		if m, err = c.newMesh(c.logger.With("component", "mesh")); err != nil {
			return nodeExecutor{}, err
		}
	}
	dp, err := newDataplane(vtep, mtu, m, c.repairPeriod, c.logger.With("component", "dataplane"))
	if err != nil {
		return nodeExecutor{}, err
	}
	pull, _ := docker.ParsePullPolicy(c.pull) // checked by validate
	dcfg := docker.Config{NodeID: nodeID, Networks: cniNetworks{cm, dp}, Pull: pull,
		NetNSDir: filepath.Join(c.stateDir, "netns"), Log: c.logger.With("component", "executor")}
	if dp != nil && m.dns != nil {
		dcfg.ResolvConfDir = filepath.Join(c.stateDir, "resolv")
		dcfg.Nameservers = nameservers(dp)
	}
	e, err := docker.New(dcfg)
	if err != nil {
		return nodeExecutor{}, err
	}
	return nodeExecutor{Executor: e, cni: cm, dp: dp}, nil
}

// onNetworks hands the networks of the agent's assignments to the CNI manager and the dataplane.
// With complete, nets are all the cluster's: the networks the node knows beyond them were
// removed while no stream told it, and are taken off.
func (e nodeExecutor) onNetworks(nets []*api.Network, complete bool) {
	if e.cni != nil {
		e.cni.SetNetworks(nets)
	}
	if e.dp != nil {
		e.dp.SetNetworks(nets)
	}
	if !complete {
		return
	}
	exist := map[string]bool{}
	for _, n := range nets {
		exist[n.GetId()] = true
	}
	var gone []string
	if e.dp != nil {
		for _, n := range e.dp.Networks() {
			if !exist[n.GetId()] {
				gone = append(gone, n.GetId())
			}
		}
	}
	if e.cni != nil {
		for _, id := range e.cni.NetworkIDs() {
			if !exist[id] && !slices.Contains(gone, id) {
				gone = append(gone, id)
			}
		}
	}
	if len(gone) > 0 {
		e.onNetworksRemoved(gone)
	}
}

// onNetworksRemoved takes networks the cluster removed off the node: their overlay devices at
// once, then their bridges (the CNI manager refuses while a task is still attached: the bridge
// then stays until the network is created again on its subnet, which removes a port-less one).
func (e nodeExecutor) onNetworksRemoved(ids []string) {
	if e.dp != nil {
		e.dp.RemoveNetworks(ids)
	}
	if e.cni == nil {
		return
	}
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), cniTimeout)
		if err := e.cni.RemoveNetworkByID(ctx, id); err != nil {
			slog.Warn("take a removed network off the node", "network", id, "err", err)
		}
		cancel()
	}
}

// onEndpoints hands the endpoint views of the agent's assignments to the dataplane.
func (e nodeExecutor) onEndpoints(complete bool, set []*api.Endpoint, removed []*api.EndpointKey) {
	if e.dp != nil {
		e.dp.ApplyEndpoints(complete, set, removed)
	}
}

// networkStatus is the agent's NetworkStatus: shoal's own CNI plugins' STATUS (a network's extra
// plugins fail that network's attachments, naming the plugin); nil (always ready) for the sim.
func (e nodeExecutor) networkStatus() func(context.Context) error {
	if e.cni == nil {
		return nil
	}
	return e.cni.NodeStatus
}

// cniTimeout bounds one CNI call (a task's attachments, a detach, a GC): a plugin that hangs
// (iptables waiting for its lock) must not hold a task, or the node's garbage collection, for good.
const cniTimeout = time.Minute

// cniNetworks attaches the Docker executor's sandboxes through the CNI manager, and connects a
// network's bridge to the overlay as soon as a task is attached to it.
type cniNetworks struct {
	m  *cni.Manager
	dp *dataplane.Controller // nil: no overlay
}

func (n cniNetworks) Attach(ctx context.Context, sb docker.Sandbox, t *api.Task) error {
	ctx, cancel := context.WithTimeout(ctx, cniTimeout)
	defer cancel()
	if err := n.m.AttachTask(ctx, sb.ID, sb.NetNS, t); err != nil {
		return err
	}
	if n.dp == nil {
		return nil
	}
	ids := make([]string, 0, len(t.GetNetworks()))
	for _, att := range t.GetNetworks() {
		ids = append(ids, att.GetNetworkId())
	}
	// The task reaches its peers on other nodes once its bridge is on the overlay; a failure
	// here is retried by the dataplane's repair pass rather than failing the task.
	if err := n.dp.Ensure(ids); err != nil {
		slog.Warn("connect a task's networks to the overlay", "task", t.GetId(), "err", err)
	}
	return nil
}

func (n cniNetworks) Check(ctx context.Context, sb docker.Sandbox, t *api.Task) error {
	ctx, cancel := context.WithTimeout(ctx, cniTimeout)
	defer cancel()
	return n.m.CheckTask(ctx, sb.ID, sb.NetNS, t)
}

func (n cniNetworks) Detach(ctx context.Context, sb docker.Sandbox) error {
	ctx, cancel := context.WithTimeout(ctx, cniTimeout)
	defer cancel()
	return n.m.DetachSandbox(ctx, sb.ID, sb.NetNS)
}

func (n cniNetworks) Collect(ctx context.Context, valid []docker.Sandbox) error {
	ctx, cancel := context.WithTimeout(ctx, cniTimeout)
	defer cancel()
	ids := make([]string, len(valid))
	for i, sb := range valid {
		ids[i] = sb.ID
	}
	return n.m.GC(ctx, ids)
}
