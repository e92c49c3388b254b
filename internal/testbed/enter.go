package testbed

// This file owns doing things inside a network namespace: running a command there (through
// nsenter) and checking from there that an address answers (on a thread locked into it).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// NsenterArgv returns the command line that runs argv in the network namespace at path (a pin
// file such as NetnsPath(name), or /proc/<pid>/ns/net). It enters that namespace only: unlike
// ip netns exec, it makes no mount namespace, so the command sees the host's mounts.
func NsenterArgv(path string, argv []string) []string {
	return append([]string{"nsenter", "--net=" + path, "--"}, argv...)
}

// RunIn runs argv in the network namespace at path and returns its combined output, also when
// it fails.
func RunIn(ctx context.Context, path string, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("run in network namespace %s: no command", path)
	}
	full := NsenterArgv(path, argv)
	out, err := exec.CommandContext(ctx, full[0], full[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("run %q in network namespace %s: %w", strings.Join(argv, " "), path, err)
	}
	return string(out), nil
}

// probePort is the TCP port Reach dials: nothing listens there in a node, so a reachable node
// answers with a reset.
const probePort = 9

// Reach opens a TCP connection from the network namespace at path to addr, on port 9 (discard),
// within timeout. A refused connection counts as reached — the peer's kernel answered — so the
// check needs no listener and no tool (such as ping) inside the node. The dial runs on an OS
// thread locked into the namespace and moved back afterwards (the CNI plugins' ns helper).
func Reach(path string, addr netip.Addr, timeout time.Duration) error {
	target := netip.AddrPortFrom(addr, probePort).String()
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		conn, err := net.DialTimeout("tcp", target, timeout)
		if err == nil {
			return conn.Close()
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("reach %s from network namespace %s: %w", target, path, err)
	}
	return nil
}
