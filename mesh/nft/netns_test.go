package nft

// This file holds the helpers of the kernel tests: a fresh, unnamed network namespace per test
// (ns.TempNetNS, closed in t.Cleanup, so the kernel removes it with its tables and links also on
// failure), running code on a thread locked to it, and running the nft binary there.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"
	"github.com/shoal/shoal/internal/nstest"
	"golang.org/x/sys/unix"
)

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates network namespaces and nftables tables")
	}
}

// newNetns returns a fresh network namespace, closed (and so removed) when the test ends.
func newNetns(tb testing.TB) ns.NetNS { return nstest.New(tb) }

// inNetns runs fn on a thread locked to n; fn returns an error to fail the test.
func inNetns(tb testing.TB, n ns.NetNS, fn func() error) { nstest.Do(tb, n, fn) }

// nodeNetns returns a fresh namespace where nftables works; the test is skipped only when the
// kernel has no nftables at all.
func nodeNetns(tb testing.TB) ns.NetNS {
	tb.Helper()
	requireRoot(tb)
	n := newNetns(tb)
	err := n.Do(func(ns.NetNS) error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		t := &nftables.Table{Name: "shoal-probe", Family: nftables.TableFamilyIPv4}
		c.AddTable(t)
		c.DelTable(t)
		return c.Flush()
	})
	if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ENOPROTOOPT) {
		tb.Skipf("kernel has no nftables (nf_tables): %v", err)
	}
	if err != nil {
		tb.Fatalf("probe nftables: %v", err)
	}
	return n
}

// nft runs the nft binary in n with args; ok is false when nft is not installed.
func nft(tb testing.TB, n ns.NetNS, args ...string) (out string, ok bool) {
	tb.Helper()
	path, err := exec.LookPath("nft")
	if err != nil {
		return "", false
	}
	inNetns(tb, n, func() error {
		// A child forked from this locked thread starts in its network namespace.
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(path, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("nft %q: %w: %s", args, err, stderr.String())
		}
		out = stdout.String()
		return nil
	})
	return out, true
}
