package main

import (
	"os"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

// inTempNetns runs fn in a fresh network namespace, which the kernel removes
// with everything in it (links, iptables tables) when the test ends. fn runs
// off the test's goroutine: it reports with t.Error and returns an error to
// stop.
func inTempNetns(t *testing.T, fn func() error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	netns, err := ns.TempNetNS()
	if err != nil {
		t.Fatalf("create a network namespace: %v", err)
	}
	t.Cleanup(func() { netns.Close() })
	if err := netns.Do(func(ns.NetNS) error { return fn() }); err != nil {
		t.Fatal(err)
	}
}
