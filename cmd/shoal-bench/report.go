package main

// This file runs the raft benchmarks and writes their section of the
// benchmarks document, with the machine they ran on.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

const (
	beginMarker = "<!-- shoal-bench raft: begin -->"
	endMarker   = "<!-- shoal-bench raft: end -->"
)

func runRaftBench(ctx context.Context, o raftOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	started := time.Now()
	tp, err := measureThroughput(ctx, o)
	if err != nil {
		return fmt.Errorf("throughput: %w", err)
	}
	fo, err := measureFailover(ctx, o)
	if err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	var sk *soakResult
	if o.soak > 0 {
		r, err := soak(ctx, o)
		if err != nil {
			return fmt.Errorf("soak: %w", err)
		}
		sk = &r
	}
	section := render(o, started, tp, fo, sk)
	return writeSection(o.out, section)
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	kernel := "unknown kernel"
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		kernel = strings.TrimSpace(string(out))
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %d GiB", (kb+(1<<19))>>20)
	}
	return fmt.Sprintf("%d × %s%s, Linux %s, %s", runtime.NumCPU(), cpu, mem, kernel, runtime.Version())
}

func render(o raftOptions, started time.Time, tp []throughputResult, fo []time.Duration, sk *soakResult) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n## Manager cluster (raft)\n\n", beginMarker)
	fmt.Fprintf(&b, "Measured %s on %s, with `make bench` (`go run ./cmd/shoal-bench raft --duration %s --kills %d --soak %s`).\n\n",
		started.UTC().Format("2006-01-02 15:04 MST"), machine(), o.duration, o.kills, o.soak)
	fmt.Fprintf(&b, "### Committed transactions per second, 3 managers\n\n")
	fmt.Fprintf(&b, "Three managers in one process on loopback with mTLS, each with its own bbolt log; every client loops\n"+
		"committing a one-object transaction (`store.Update` creating an object), spread over the three managers\n"+
		"(followers forward to the leader). A transaction is acknowledged only after it is fsynced by a majority\n"+
		"and applied by the manager the client called. %s per client count.\n\n", o.duration)
	fmt.Fprintf(&b, "| clients | committed tx/s | p50 latency | p99 latency | failed |\n|---:|---:|---:|---:|---:|\n")
	for _, r := range tp {
		fmt.Fprintf(&b, "| %d | %.0f | %s | %s | %d |\n", r.clients, r.perSecond(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.failed)
	}
	fmt.Fprintf(&b, "\nTarget: at least 5,000/s at 64 clients.\n\n")
	fmt.Fprintf(&b, "### Leader failover\n\n")
	fmt.Fprintf(&b, "Three shoald processes at their default raft timing (100 ms tick, election after 10 ticks, heartbeat\n"+
		"every tick, PreVote and CheckQuorum on). Each round SIGKILLs the leader and times until a surviving\n"+
		"manager accepts a write (a node update through its Control socket); the killed manager is restarted\n"+
		"and the cluster is healthy again before the next round.\n\n")
	if len(fo) > 0 {
		fmt.Fprintf(&b, "| kills | min | median | p90 | max |\n|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n\n", len(fo), ms(fo[0]), ms(fo[len(fo)/2]), ms(fo[len(fo)*9/10]), ms(fo[len(fo)-1]))
		var all []string
		for _, d := range fo {
			all = append(all, ms(d))
		}
		fmt.Fprintf(&b, "All rounds, sorted: %s.\n\n", strings.Join(all, ", "))
	}
	fmt.Fprintf(&b, "Target: median at most 2 s.\n\n")
	if sk != nil {
		fmt.Fprintf(&b, "### Leader stability under load\n\n")
		fmt.Fprintf(&b, "Three in-process managers (default timing) under %d clients committing as fast as they can for %s:\n"+
			"%d transactions committed (%.0f/s), **%d leader changes** (raft term %s).\n\n",
			sk.clients, sk.duration, sk.committed, float64(sk.committed)/sk.duration.Seconds(), sk.leaderChanges, sk.terms)
		fmt.Fprintf(&b, "Target: no spurious leader change in 10 minutes under full write load.\n\n")
	}
	fmt.Fprintf(&b, "%s\n", endMarker)
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// writeSection replaces the raft section of path, or appends it.
func writeSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	if doc == "" {
		doc = "# shoal benchmarks\n\nFigures measured on the machine named in each section, with the command given there.\n\n"
	}
	if i, j := strings.Index(doc, beginMarker), strings.Index(doc, endMarker); i >= 0 && j > i {
		doc = doc[:i] + section + doc[j+len(endMarker)+1:]
	} else {
		doc += section
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
