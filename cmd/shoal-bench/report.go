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

// Each measurement owns a section of the benchmarks document, between
// markers, so one can be measured again without the others.
// name is "<benchmark> <measurement>", e.g. "raft throughput".
func markers(name string) (begin, end string) {
	return "<!-- shoal-bench " + name + ": begin -->", "<!-- shoal-bench " + name + ": end -->"
}

func runRaftBench(ctx context.Context, o raftOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	for _, m := range o.only {
		started := time.Now()
		var body string
		switch m {
		case "throughput":
			tp, err := measureThroughput(ctx, o)
			if err != nil {
				return fmt.Errorf("throughput: %w", err)
			}
			body = renderThroughput(o, tp)
		case "failover":
			fo, err := measureFailover(ctx, o)
			if err != nil {
				return fmt.Errorf("failover: %w", err)
			}
			body = renderFailover(fo)
		case "soak":
			sk, err := soak(ctx, o)
			if err != nil {
				return fmt.Errorf("soak: %w", err)
			}
			body = renderSoak(sk)
		}
		cmd := fmt.Sprintf("go run ./cmd/shoal-bench raft --only %s --duration %s --kills %d --soak %s --workload %s", m, o.duration, o.kills, o.soak, o.workload)
		section := fmt.Sprintf("%s\nMeasured %s on %s, with `%s`.\n", body,
			started.UTC().Format("2006-01-02 15:04 MST"), machine(), cmd)
		name := m
		if o.workload != "update" {
			name += " " + o.workload
		}
		if err := writeSection(o.out, "raft "+name, section); err != nil {
			return err
		}
	}
	return nil
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

func renderThroughput(o raftOptions, tp []throughputResult) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "### Committed transactions per second, 3 managers\n\n")
	fmt.Fprintf(&b, "Three managers in one process on loopback with mTLS, each with its own bbolt log; every client loops\n"+
		"committing a one-object transaction (%s) through one manager, the clients spread evenly over the\n"+
		"three (followers forward to the leader). A transaction is acknowledged only after it is fsynced by\n"+
		"a majority and applied by the manager the client called. %s per client count.\n\n", txDescription(), o.duration)
	fmt.Fprintf(&b, "| clients | committed tx/s | p50 latency | p99 latency | failed |\n|---:|---:|---:|---:|---:|\n")
	for _, r := range tp {
		fmt.Fprintf(&b, "| %d | %.0f | %s | %s | %d |\n", r.clients, r.perSecond(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.failed)
	}
	fmt.Fprintf(&b, "\nTarget: at least 5,000/s at 64 clients.\n")
	return b.String()
}

func txDescription() string {
	if growStore {
		return "`store.Update` creating a new object,\nso the store grows all along"
	}
	return "`store.Update` of a node object it owns, read, changed and\nversion-checked"
}

func renderFailover(fo []time.Duration) string {
	var b bytes.Buffer
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
	fmt.Fprintf(&b, "Target: median at most 2 s.\n")
	return b.String()
}

func renderSoak(sk soakResult) string {
	var b bytes.Buffer
	title, what := "Leader stability under load", "updates of their own objects\n(the throughput workload)"
	if growStore {
		title, what = "Leader stability while the store grows", "transactions that each create a\nnew object (the store grows all along)"
	}
	fmt.Fprintf(&b, "### %s\n\n", title)
	fmt.Fprintf(&b, "Three in-process managers (default timing) under %d clients committing %s as fast as they can for %s:\n"+
		"%d transactions committed (%.0f/s), **%d leader changes** (raft term %s).\n\n",
		sk.clients, what, sk.duration, sk.committed, float64(sk.committed)/sk.duration.Seconds(), sk.leaderChanges, sk.terms)
	fmt.Fprintf(&b, "Target: no spurious leader change in 10 minutes under full write load.\n")
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// writeSection replaces the named section of path, or appends it.
func writeSection(path, name, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	if doc == "" {
		doc = "# shoal benchmarks\n\nFigures measured on this project's development machine, each with the command that produced\nit. `make bench` runs them all.\n\n## Manager cluster (raft)\n\n"
	}
	begin, end := markers(name)
	block := begin + "\n" + section + end + "\n"
	if i, j := strings.Index(doc, begin), strings.Index(doc, end); i >= 0 && j > i {
		doc = doc[:i] + block + doc[j+len(end)+1:]
	} else {
		doc += block + "\n"
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
