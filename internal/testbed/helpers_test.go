package testbed

// This file holds what the package's tests share: the skip when a bed cannot be built here, a
// bed per test that is removed also when the test fails, and polling with a deadline.

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testScheme starts the names of the namespaces this package's tests make.
const testScheme = "shoal-testbed-"

var (
	// testBeds numbers the beds of this test run.
	testBeds atomic.Int32
	// testSweep sweeps dead test runs' namespaces before the first bed.
	testSweep sync.Once
)

// requireBed skips t when what a bed needs is truly absent, saying which.
func requireBed(t *testing.T) {
	t.Helper()
	if err := Check(); err != nil {
		t.Skip(err)
	}
}

// newTestBed builds a bed for t, named testScheme<pid>-<k>, and registers its removal; on
// failure the bed's addresses and links are logged first.
func newTestBed(t *testing.T) *Bed {
	t.Helper()
	requireBed(t)
	testSweep.Do(func() {
		removed, err := Sweep(testScheme)
		if len(removed) > 0 {
			t.Logf("removed network namespaces of dead runs: %s", strings.Join(removed, " "))
		}
		if err != nil {
			t.Logf("sweeping dead runs' network namespaces: %v", err)
		}
	})
	k := int(testBeds.Add(1))
	subnet, err := PickSubnet(k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ReleaseSubnet(subnet) })
	b, err := New(fmt.Sprintf("%s%d-%d", testScheme, os.Getpid(), k), subnet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- bed %s (%s) ---\n%s", b.Name(), b.Subnet(), b.Describe())
		}
		if err := b.Remove(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// waitFor polls f every 50ms until it returns nil, failing t with f's last error once timeout
// has passed.
func waitFor(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
