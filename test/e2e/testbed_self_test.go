package e2e

// This file tests the glue of testbed_test.go: a sim cluster of 3 managers and 2 workers on a
// bed. The bed's plumbing on its own is tested in internal/testbed.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/testbed"
)

// TestBedCluster runs 3 managers and 2 workers (sim executor) on a bed: they form a cluster over
// their underlay addresses, each in its own network namespace and the host's mount namespace;
// a node reaches another node but not the host; a cut worker is declared down and comes back
// when healed; a stopped worker and a SIGKILLed leader come back in their namespaces; and no
// namespace of the bed outlives the test.
func TestBedCluster(t *testing.T) {
	var bedName string
	t.Cleanup(func() { // registered before the bed's cleanup, so it runs after it
		if bedName == "" {
			return
		}
		names, err := testbed.ListNetns()
		if err != nil {
			t.Error(err)
		}
		for _, ns := range names {
			if strings.HasPrefix(ns, bedName+"-") {
				t.Errorf("namespace %s outlived the test", ns)
			}
		}
	})
	c := newBedCluster(t, fastRaft...)
	bedName = c.bed.Name()

	c.initManagers(3)
	c.startWorkers(4, 5)
	c.waitReady(5)
	for n := 1; n <= 5; n++ {
		c.checkInNode(n)
	}

	// Node 1 reaches node 4 over the underlay, and has no way to the host.
	if err := c.reach(1, c.nodeAddr(4)); err != nil {
		t.Fatalf("node 1 cannot reach node 4 over the underlay: %v", err)
	}
	if out, err := c.inNode(1, "ip", "route", "get", c.nodeAddr(4)); err != nil || !contains(out, "dev "+testbed.NodeLink) {
		t.Errorf("node 1's route to node 4 is not on %s: %v\n%s", testbed.NodeLink, err, out)
	}
	if host, ok := hostIPv4(t); ok {
		if err := c.reach(1, host); err == nil {
			t.Errorf("node 1 reaches the host's address %s", host)
		}
		if out, err := c.inNode(1, "ip", "route", "get", host); err == nil {
			t.Errorf("node 1 has a route to the host's address %s:\n%s", host, out)
		}
	} else {
		t.Log("the host has no IPv4 address outside loopback and the bed; isolation from the host not checked")
	}

	// A partition: worker 5 cut off is declared down, and is ready again once healed.
	c.cut(5)
	cut := time.Now()
	c.waitNodeState("node-5", api.NodeState_NODE_STATE_DOWN)
	t.Logf("node-5 cut off: shown down after %s", time.Since(cut).Round(100*time.Millisecond))
	if err := c.reach(1, c.nodeAddr(5)); err == nil {
		t.Errorf("node 1 reaches node 5 while it is cut off")
	}
	c.heal(5)
	c.waitNodeState("node-5", api.NodeState_NODE_STATE_READY)
	if err := c.reach(1, c.nodeAddr(5)); err != nil {
		t.Errorf("node 1 does not reach node 5 after the heal: %v", err)
	}

	// A worker stopped with SIGTERM exits cleanly and comes back in its namespace.
	c.stop(4)
	if code := c.node(4).cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("shoald 4 exited with %d after SIGTERM", code)
	}
	c.start(4)
	c.checkInNode(4)
	c.waitNodeState("node-4", api.NodeState_NODE_STATE_READY)

	// The leader killed with SIGKILL: the others elect a new one; restarted, it rejoins.
	old, err := c.leader(1)
	if err != nil {
		t.Fatal(err)
	}
	c.node(old).kill()
	c.waitManagers(3, 2)
	c.start(old)
	c.checkInNode(old)
	c.waitManagers(3, 3)
	c.waitReady(5)
}

// waitReady waits until `shoalctl node ls` on a live manager shows want nodes ready.
func (c *cluster) waitReady(want int) {
	c.t.Helper()
	eventually(c.t, 60*time.Second, fmt.Sprintf("%d nodes ready", want), func() error {
		for _, p := range c.liveNodes() {
			if !c.isManagerProc(p) {
				continue
			}
			out, err := c.shoalctl(p.n, "node", "ls")
			if err != nil {
				return fmt.Errorf("node ls on node %d: %w\n%s", p.n, err, out)
			}
			if got := countLines(out, "Ready"); got != want {
				return fmt.Errorf("%d ready nodes:\n%s", got, out)
			}
			return nil
		}
		return fmt.Errorf("no live manager")
	})
}

// checkInNode fails the test unless node n's shoald runs in n's network namespace and in the
// test's own mount namespace (what the Docker executor's bind mounts need), and has its
// underlay address.
func (c *cluster) checkInNode(n int) {
	c.t.Helper()
	pid := c.node(n).cmd.Process.Pid
	// The process starts as nsenter, which enters the namespace and then execs shoald.
	eventually(c.t, 10*time.Second, fmt.Sprintf("pid %d execs shoald", pid), func() error {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || filepath.Base(exe) != "shoald" {
			return fmt.Errorf("runs %q (%v)", exe, err)
		}
		return nil
	})
	proc := fmt.Sprintf("/proc/%d/ns/", pid)
	if got, want := netnsInode(c.t, proc+"net"), netnsInode(c.t, c.bed.NodeNSPath(n)); got != want {
		c.t.Errorf("shoald %d (pid %d) runs in network namespace %d, not its node's %d", n, pid, got, want)
	}
	if got, want := netnsInode(c.t, proc+"mnt"), netnsInode(c.t, "/proc/self/ns/mnt"); got != want {
		c.t.Errorf("shoald %d (pid %d) runs in mount namespace %d, not the host's %d", n, pid, got, want)
	}
	out, err := c.inNetNS(proc+"net", "ip", "-br", "addr", "show", testbed.NodeLink)
	if err != nil || !contains(out, c.nodeAddr(n)+"/24") {
		c.t.Errorf("node %d's %s lacks %s/24: %v\n%s", n, testbed.NodeLink, c.nodeAddr(n), err, out)
	}
}

// netnsInode returns the inode of a namespace file (a pin file or /proc/<pid>/ns/<type>).
func netnsInode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat namespace %s: %v", path, err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// hostIPv4 returns an IPv4 address of the host outside loopback and 198.18.0.0/15.
func hostIPv4(t *testing.T) (string, bool) {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("list the host's addresses: %v", err)
	}
	bench := netip.MustParsePrefix("198.18.0.0/15")
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if ip = ip.Unmap(); ok && ip.Is4() && !ip.IsLoopback() && !bench.Contains(ip) {
			return ip.String(), true
		}
	}
	return "", false
}
