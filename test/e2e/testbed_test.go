package e2e

// This file puts a cluster on a multi-node test bed (package internal/testbed): every node is a
// network namespace with its own underlay address on a bridge, and each node's shoald runs
// inside its node's namespace — entered with nsenter --net only, so it shares the test's mount
// namespace and the Docker executor's bind mounts are seen by the Docker engine. The harness
// (harness_test.go) starts and kills the processes; testbed builds the network they run in; this
// file is the glue between them (newBedCluster, cut, heal, stop, inNode, inNetNS, nodeAddr,
// reach). The bed's layout is described in testbed's package doc.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal/shoal/internal/testbed"
)

// bedScheme starts the name of every namespace an e2e bed makes: bedScheme<pid>-<k>-<role>.
const bedScheme = "shoal-e2e-"

// bedCommandTimeout bounds a command run in a node by inNode or inNetNS.
const bedCommandTimeout = 60 * time.Second

// bed is a test bed; cluster.bed holds one.
type bed = testbed.Bed

var (
	// bedCount numbers the beds of this run.
	bedCount atomic.Int32
	// sweepOnce sweeps dead runs' namespaces before the first bed of this run.
	sweepOnce sync.Once
)

// newBedCluster returns a cluster on a new bed: node n listens on 198.18.B.n:4242 inside its
// own network namespace, made on the first start of n and kept across its restarts. It skips
// the test when the bed cannot be built here (not root, no nsenter, ip or network namespaces).
// The bed is removed after the cluster's processes are killed, also when the test fails; on
// failure the bed's addresses and links are logged first.
func newBedCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	b := startBed(t) // first: its cleanup then runs after the processes are killed
	c := newCluster(t, extra...)
	c.bed = b
	a := b.Subnet().Addr().As4()
	c.prefix = fmt.Sprintf("%d.%d.%d.", a[0], a[1], a[2]) // "198.18.B."
	return c
}

// startBed builds a bed for t and registers its removal.
func startBed(t *testing.T) *bed {
	t.Helper()
	requireBed(t)
	sweepOnce.Do(func() {
		removed, err := testbed.Sweep(bedScheme)
		if len(removed) > 0 {
			t.Logf("removed %d network namespaces left by dead runs: %s", len(removed), strings.Join(removed, " "))
		}
		if err != nil {
			t.Logf("sweeping dead runs' network namespaces: %v", err)
		}
	})
	k := int(bedCount.Add(1))
	subnet, err := testbed.PickSubnet(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := testbed.New(fmt.Sprintf("%s%d-%d", bedScheme, os.Getpid(), k), subnet)
	if err != nil {
		testbed.ReleaseSubnet(subnet)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- bed %s (%s) ---\n%s", b.Name(), b.Subnet(), b.Describe())
		}
		if err := b.Remove(); err != nil {
			t.Errorf("%v", err)
		}
		testbed.ReleaseSubnet(b.Subnet())
	})
	return b
}

// requireBed skips t when what a bed needs is truly absent, saying which.
func requireBed(t *testing.T) {
	t.Helper()
	if err := testbed.Check(); err != nil {
		t.Skip(err)
	}
}

// mustBed returns the cluster's bed, failing the test if the cluster has none.
func (c *cluster) mustBed() *bed {
	c.t.Helper()
	if c.bed == nil {
		c.t.Fatal("this cluster runs on loopback, not on a test bed (use newBedCluster)")
	}
	return c.bed
}

// enterNode makes node n's namespace if it has none yet and changes cmd to run inside it.
// cluster.start calls it for every shoald of a bed cluster.
func (c *cluster) enterNode(n int, cmd *exec.Cmd) {
	c.t.Helper()
	b := c.mustBed()
	if err := b.AddNode(n); err != nil {
		c.t.Fatalf("start shoald %d: %v", n, err)
	}
	path, err := exec.LookPath("nsenter")
	if err != nil {
		c.t.Fatalf("start shoald %d: %v", n, err)
	}
	cmd.Path = path
	cmd.Args = testbed.NsenterArgv(b.NodeNSPath(n), cmd.Args)
}

// nodeAddr is node n's underlay address, 198.18.B.n.
func (c *cluster) nodeAddr(n int) string { return c.mustBed().NodeAddr(n).String() }

// cut takes node n off the underlay: its port on the bridge goes down, a partition.
func (c *cluster) cut(n int) {
	c.t.Helper()
	if err := c.mustBed().SetConnected(n, false); err != nil {
		c.t.Fatalf("cut node %d: %v", n, err)
	}
}

// heal puts node n back on the underlay.
func (c *cluster) heal(n int) {
	c.t.Helper()
	if err := c.mustBed().SetConnected(n, true); err != nil {
		c.t.Fatalf("heal node %d: %v", n, err)
	}
}

// stop stops node n's shoald with SIGTERM and waits for it to exit (killing it, and failing
// the test, if it takes longer than 30 seconds).
func (c *cluster) stop(n int) {
	c.t.Helper()
	c.stopGracefully(n, 30*time.Second)
}

// reach checks that node n reaches addr (an address without port) within a second; see
// testbed.Reach.
func (c *cluster) reach(n int, addr string) error {
	c.t.Helper()
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return fmt.Errorf("node %d reaches %q: %w", n, addr, err)
	}
	return testbed.Reach(c.mustBed().NodeNSPath(n), a, time.Second)
}

// inNode runs argv in node n's network namespace and returns its combined output.
func (c *cluster) inNode(n int, argv ...string) (string, error) {
	c.t.Helper()
	return c.inNetNS(c.mustBed().NodeNSPath(n), argv...)
}

// inNetNS runs argv in the network namespace at path (a task's /proc/<pid>/ns/net or a pin
// file) and returns its combined output.
func (c *cluster) inNetNS(path string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bedCommandTimeout)
	defer cancel()
	return testbed.RunIn(ctx, path, argv...)
}
