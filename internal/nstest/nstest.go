// Package nstest gives tests throwaway network namespaces: made fresh, removed (with every link,
// address and nftables table in them) when the test ends, so a test's kernel state never leaks
// into the host's or another test's. It imports only containernetworking's ns package.
package nstest

import (
	"os"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

// New returns a fresh network namespace, closed (and so removed) when the test ends. It skips
// the test when not run as root, which making one needs.
func New(tb testing.TB) ns.NetNS {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates a network namespace")
	}
	n, err := ns.TempNetNS()
	if err != nil {
		tb.Fatalf("create a network namespace: %v", err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

// Do runs fn on a thread locked to n; fn returns an error to fail the test. fn runs off the
// test's goroutine: it reports with tb.Error and returns an error to stop.
func Do(tb testing.TB, n ns.NetNS, fn func() error) {
	tb.Helper()
	if err := n.Do(func(ns.NetNS) error { return fn() }); err != nil {
		tb.Fatal(err)
	}
}

// InTemp runs fn in a fresh network namespace (New, then Do).
func InTemp(tb testing.TB, fn func() error) {
	tb.Helper()
	Do(tb, New(tb), fn)
}
