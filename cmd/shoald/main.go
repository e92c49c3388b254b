// Command shoald is shoal's node daemon: a manager (raft member, API server,
// scheduler host) and/or a worker (agent). Started without --join-addr it
// initialises a new cluster; with --join-addr and --join-token it joins one,
// as a worker or a manager according to the token; restarted with a state
// folder that holds a node's credentials it carries on as that node.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/agent/cni"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var cfg nodeConfig
	var logLevel string
	cmd := &cobra.Command{
		Use:           "shoald",
		Short:         "Run a shoal node (manager or worker)",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLevel(logLevel)
			if err != nil {
				return err
			}
			cfg.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if err := cfg.validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runNode(ctx, cfg)
		},
	}
	host, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVarP(&cfg.stateDir, "state-dir", "d", "/var/lib/shoal", "folder for the node's credentials and raft state")
	f.StringVar(&cfg.listenRemoteAPI, "listen-remote-api", "0.0.0.0:4242", "address a manager serves the mTLS API on")
	f.StringVar(&cfg.advertiseAddr, "advertise-addr", "", "address other nodes reach this manager at (default: the listen address)")
	f.StringVar(&cfg.controlSocket, "listen-control-api", "/var/run/shoal/control.sock", "unix socket of the local Control API (managers)")
	f.StringVar(&cfg.hostname, "hostname", host, "the node's hostname as the cluster shows it")
	f.StringVar(&cfg.joinAddr, "join-addr", "", "a manager's remote API address, to join its cluster")
	f.StringVar(&cfg.joinToken, "join-token", "", "the join token (shoalctl cluster join-token worker|manager)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&cfg.tickInterval, "raft-tick", 100*time.Millisecond, "raft tick interval")
	f.IntVar(&cfg.electionTick, "election-tick", 10, "raft election timeout, in ticks")
	f.IntVar(&cfg.heartbeatTick, "heartbeat-tick", 1, "raft heartbeat interval, in ticks")
	f.Uint64Var(&cfg.snapshotInterval, "snapshot-interval", 10000, "raft entries between snapshots")
	f.Uint64Var(&cfg.keepOldSnapshotEntries, "log-entries-for-slow-followers", 500, "raft entries kept after a snapshot for slow followers")
	f.DurationVar(&cfg.certExpiry, "cert-expiry", 90*24*time.Hour, "node certificate lifetime (new cluster only)")
	f.DurationVar(&cfg.dispatcherHeartbeat, "dispatcher-heartbeat", 5*time.Second, "agent heartbeat period (new cluster only)")
	f.StringVar(&cfg.clusterName, "cluster-name", "default", "name of a new cluster")
	f.StringVar(&cfg.executor, "executor", "docker", "what runs tasks: docker, or sim (in memory, for tests and benchmarks)")
	f.DurationVar(&cfg.simStartDelay, "sim-start-delay", 0, "sim executor: how long a task takes to start")
	f.Float64Var(&cfg.simFailureRate, "sim-failure-rate", 0, "sim executor: fraction of tasks, 0 to 1, that fail at start")
	f.Float64Var(&cfg.simCPUs, "sim-cpus", 0, "sim executor: CPUs the node offers (default: the host's)")
	f.StringVar(&cfg.simMemory, "sim-memory", "", "sim executor: memory the node offers, e.g. 4GiB (default: the host's)")
	f.StringVar(&cfg.pull, "pull", "missing", "docker executor: when task images are pulled: always, missing or never")
	f.StringVar(&cfg.cniBinDir, "cni-bin-dir", cni.DefaultBinDir, "docker executor: folder(s), colon-separated, holding the CNI plugins (shoal-bridge, shoal-ipam, and the networks' extra plugins)")
	f.IntVar(&cfg.networkMTU, "network-mtu", 0, "docker executor: MTU of the tasks' network interfaces, the networks' bridges and VXLAN devices (0: the underlay link's less VXLAN's 50 bytes)")
	f.StringVar(&cfg.dataPathAddrFlag, "data-path-addr", "", "IPv4 address other nodes' VXLAN tunnels reach this node at (default: the advertise address, else the address that routes to the managers)")
	f.StringVar(&cfg.lbBackend, "lb-backend", "auto", "docker executor: what balances service VIPs and published ports: nftables, ipvs, or auto (IPVS where the kernel has it, else nftables)")
	f.DurationVar(&cfg.endpointGrace, "endpoint-grace", 2*time.Second, "how long a task serving on networks keeps running once it is to stop, so that load balancers stop sending it connections first (0: stop at once)")
	f.DurationVar(&cfg.repairPeriod, "dataplane-repair-period", 30*time.Second, "how often the node's overlay and service mesh are read back from the kernel and repaired")
	f.StringArrayVar(&cfg.engineLabels, "engine-label", nil, "an engine label KEY=VALUE of the node, for placement constraints (repeatable)")
	cmd.AddCommand(newPauseCommand())
	return cmd
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level: %q is not a level (debug, info, warn or error)", s)
}
