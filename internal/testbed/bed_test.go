package testbed

// This file tests the Bed: its names and addresses and the input it refuses (no root needed),
// and its plumbing on a real bed of two nodes.

import (
	"context"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/shoal/shoal/overlay"
)

// TestBedNames checks the names and addresses a bed derives from its name and subnet.
func TestBedNames(t *testing.T) {
	b := &Bed{name: "x-1-2", subnet: netip.MustParsePrefix("198.18.150.0/24"), nodes: map[int]bool{}}
	tests := []struct {
		what, got, want string
	}{
		{"Name", b.Name(), "x-1-2"},
		{"Subnet", b.Subnet().String(), "198.18.150.0/24"},
		{"UnderlayNS", b.UnderlayNS(), "x-1-2-ul"},
		{"NodeNS(3)", b.NodeNS(3), "x-1-2-n3"},
		{"NodeNSPath(3)", b.NodeNSPath(3), "/run/netns/x-1-2-n3"},
		{"NodeAddr(1)", b.NodeAddr(1).String(), "198.18.150.1"},
		{"NodeAddr(254)", b.NodeAddr(254).String(), "198.18.150.254"},
		{"port(254)", b.port(254), "ul-n254"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.what, tt.got, tt.want)
		}
	}
}

// TestNewRefusesBadInput checks that New refuses a bad name or subnet before it makes anything.
func TestNewRefusesBadInput(t *testing.T) {
	good := netip.MustParsePrefix("198.18.150.0/24")
	tests := []struct {
		name, bed string
		subnet    netip.Prefix
		want      string
	}{
		{"empty name", "", good, "name"},
		{"name with a slash", "a/b", good, "name"},
		{"zero subnet", "shoal-testbed-bad", netip.Prefix{}, "not an IPv4 /24"},
		{"a /16", "shoal-testbed-bad", netip.MustParsePrefix("198.18.0.0/16"), "not an IPv4 /24"},
		{"IPv6", "shoal-testbed-bad", netip.MustParsePrefix("2001:db8::/120"), "not an IPv4 /24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(tt.bed, tt.subnet)
			if err == nil {
				_ = b.Remove()
				t.Fatalf("New(%q, %s) succeeded", tt.bed, tt.subnet)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%q, %s): %v, want an error about %q", tt.bed, tt.subnet, err, tt.want)
			}
			if tt.bed != "" && NetnsExists(tt.bed+"-ul") {
				t.Errorf("New(%q, %s) failed but left its underlay namespace", tt.bed, tt.subnet)
			}
		})
	}
}

// TestBedRefusesNodes checks the node numbers and states AddNode and SetConnected refuse,
// without touching the kernel.
func TestBedRefusesNodes(t *testing.T) {
	b := &Bed{name: "shoal-testbed-refuse", subnet: netip.MustParsePrefix("198.18.150.0/24"), nodes: map[int]bool{}}
	for _, n := range []int{-1, 0, 255} {
		if err := b.AddNode(n); err == nil || !strings.Contains(err.Error(), "1 to 254") {
			t.Errorf("AddNode(%d): %v, want an error about the numbering", n, err)
		}
	}
	if err := b.SetConnected(1, false); err == nil || !strings.Contains(err.Error(), "no namespace") {
		t.Errorf("SetConnected on a node never added: %v, want an error", err)
	}
	b.removed = true
	if err := b.AddNode(1); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Errorf("AddNode on a removed bed: %v, want an error", err)
	}
}

// TestBedPlumbing builds a bed of two nodes and checks what its users rely on: the nodes reach
// each other, a command run in a node sees the node's address and the host's mounts, no link
// shows up in the caller's namespace nor the bed's subnet on the host, adding a node twice
// keeps its namespace, a cut node is unreachable until healed, and removing the bed (twice)
// leaves no namespace.
func TestBedPlumbing(t *testing.T) {
	hostLinks := linkNames(t)
	b := newTestBed(t)
	for _, n := range []int{1, 2} {
		if err := b.AddNode(n); err != nil {
			t.Fatal(err)
		}
	}
	probe := func(from, to int) error { return Reach(b.NodeNSPath(from), b.NodeAddr(to), time.Second) }
	waitFor(t, 10*time.Second, "node 1 to reach node 2", func() error { return probe(1, 2) })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := RunIn(ctx, b.NodeNSPath(2), "ip", "-br", "addr", "show", NodeLink)
	if want := b.NodeAddr(2).String() + "/24"; err != nil || !strings.Contains(out, want) {
		t.Errorf("node 2's %s lacks %s: %v\n%s", NodeLink, want, err, out)
	}
	// The underlay switches without a firewall (where br_netfilter exists to turn off).
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil {
		out, err := RunIn(ctx, NetnsPath(b.UnderlayNS()), "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables")
		if err != nil || strings.TrimSpace(out) != "0" {
			t.Errorf("bridge-nf-call-iptables in the underlay is %q (%v), want 0", strings.TrimSpace(out), err)
		}
	}
	// The node's underlay link has GRO on, as a NIC's driver has by default.
	var gro bool
	if err := ns.WithNetNSPath(b.NodeNSPath(2), func(ns.NetNS) (err error) {
		gro, err = overlay.GROEnabled(NodeLink)
		return err
	}); err != nil || !gro {
		t.Errorf("node 2's %s has GRO off (%v)", NodeLink, err)
	}
	out, err = RunIn(ctx, b.NodeNSPath(2), "readlink", "/proc/self/ns/mnt")
	if self, _ := os.Readlink("/proc/self/ns/mnt"); err != nil || strings.TrimSpace(out) != self {
		t.Errorf("a command in node 2 runs in mount namespace %q (%v), not the caller's %q", strings.TrimSpace(out), err, self)
	}

	after := linkNames(t)
	for _, name := range []string{Bridge, NodeLink, b.port(1), b.port(2)} {
		if after[name] && !hostLinks[name] {
			t.Errorf("link %s of the bed showed up in the caller's namespace", name)
		}
	}
	if on, err := SubnetOnHost(b.Subnet()); err != nil || on {
		t.Errorf("the bed's subnet %s is on the host (%v, %v)", b.Subnet(), on, err)
	}

	before := inode(t, b.NodeNSPath(2))
	if err := b.AddNode(2); err != nil {
		t.Fatalf("adding node 2 again: %v", err)
	}
	if after := inode(t, b.NodeNSPath(2)); after != before {
		t.Errorf("adding node 2 again replaced its namespace (inode %d, was %d)", after, before)
	}

	if err := b.SetConnected(2, false); err != nil {
		t.Fatal(err)
	}
	if err := probe(1, 2); err == nil {
		t.Errorf("node 1 reaches node 2 after node 2 was cut")
	}
	if err := b.SetConnected(2, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node 1 to reach node 2 after the heal", func() error { return probe(1, 2) })

	desc := b.Describe()
	for _, want := range []string{b.UnderlayNS(), b.NodeNS(1), b.NodeNS(2), b.NodeAddr(2).String() + "/24", Bridge} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}

	names := b.Namespaces()
	if want := []string{b.UnderlayNS(), b.NodeNS(1), b.NodeNS(2)}; !slices.Equal(names, want) {
		t.Errorf("Namespaces() = %v, want %v", names, want)
	}
	for i := range 2 {
		if err := b.Remove(); err != nil {
			t.Fatalf("remove %d: %v", i+1, err)
		}
	}
	for _, ns := range names {
		if NetnsExists(ns) {
			t.Errorf("namespace %s outlived the bed's removal", ns)
		}
	}
	if err := b.AddNode(3); err == nil {
		t.Errorf("AddNode after Remove succeeded")
	}
}

// inode returns the inode of a namespace file (a pin file or /proc/<pid>/ns/<type>).
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat namespace %s: %v", path, err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// linkNames returns the names of the links in the test's network namespace.
func linkNames(t *testing.T) map[string]bool {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatalf("list the caller's links: %v", err)
	}
	names := make(map[string]bool, len(ifs))
	for _, i := range ifs {
		names[i.Name] = true
	}
	return names
}
