// Command shoal-bench measures shoal on this machine and writes the figures
// to docs/benchmarks.md. `shoal-bench raft` measures the manager cluster:
// committed transactions per second at several client counts (in-process
// managers over loopback mTLS, every entry fsynced by a majority), leader
// failover time with real shoald processes killed by SIGKILL, and leader
// stability under a sustained full write load. `shoal-bench orchestration`
// times a service's tasks to RUNNING on simulated nodes, and `shoal-bench
// allocator` times their addresses and the allocator's rebuild on each
// leader takeover.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{Use: "shoal-bench", Short: "Benchmark shoal", SilenceUsage: true}
	root.AddCommand(raftCommand(), orchestrationCommand(), allocatorCommand(), containersCommand(), overlayCommand(), meshCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

type raftOptions struct {
	out       string
	shoald    string
	levels    []int
	duration  time.Duration
	kills     int
	soak      time.Duration
	soakUsers int
	cpuprof   string
	only      []string
	workload  string
}

func raftCommand() *cobra.Command {
	var o raftOptions
	cmd := &cobra.Command{
		Use:   "raft",
		Short: "Throughput, failover and stability of a 3-manager cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.kills <= 0 || o.duration <= 0 || o.soak <= 0 {
				return fmt.Errorf("--kills, --duration and --soak must be positive")
			}
			switch o.workload {
			case "update":
			case "create":
				growStore = true
			default:
				return fmt.Errorf("--workload: %q is not a workload (update or create)", o.workload)
			}
			for _, m := range o.only {
				if m != "throughput" && m != "failover" && m != "soak" {
					return fmt.Errorf("--only: %q is not a measurement (throughput, failover or soak)", m)
				}
			}
			return runRaftBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose raft section is replaced with the figures")
	f.StringVar(&o.shoald, "shoald", "bin/shoald", "shoald binary for the failover runs")
	f.IntSliceVar(&o.levels, "clients", []int{1, 16, 64}, "concurrent client counts for the throughput runs")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "length of each throughput run")
	f.IntVar(&o.kills, "kills", 20, "leader kills in the failover run")
	f.DurationVar(&o.soak, "soak", 10*time.Minute, "length of the stability run under full write load")
	f.IntVar(&o.soakUsers, "soak-clients", 64, "concurrent clients in the stability run")
	f.StringVar(&o.cpuprof, "cpuprofile", "", "write a CPU profile of the throughput runs to this file")
	f.StringVar(&o.workload, "workload", "update", "update: each client updates its own object; create: each transaction creates one (the store grows)")
	f.StringSliceVar(&o.only, "only", []string{"throughput", "failover", "soak"}, "measurements to run: throughput, failover, soak (each replaces its own section of --out)")
	return cmd
}
