package cnitest

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// sandbox is a named network namespace standing in for a container's.
type sandbox struct {
	name string
	path string
}

// newSandbox creates a named namespace, removed when the test ends.
func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	s := &sandbox{name: "shoal-t-" + randomHex(t, 4)}
	s.path = filepath.Join("/run/netns", s.name)
	if out, err := exec.Command("ip", "netns", "add", s.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", s.name, err, out)
	}
	t.Cleanup(func() { s.remove(t) })
	return s
}

// remove deletes the namespace; a second call does nothing.
func (s *sandbox) remove(t *testing.T) {
	t.Helper()
	handle, err := ns.GetNS(s.path)
	if err != nil {
		return // already gone
	}
	handle.Close()
	if out, err := exec.Command("ip", "netns", "del", s.name).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v: %s", s.name, err, out)
	}
}

// do runs fn inside the namespace.
func (s *sandbox) do(t *testing.T, fn func() error) {
	t.Helper()
	if err := ns.WithNetNSPath(s.path, func(ns.NetNS) error { return fn() }); err != nil {
		t.Fatalf("in netns %s: %v", s.name, err)
	}
}

// link returns the namespace's link called name.
func (s *sandbox) link(t *testing.T, name string) netlink.Link {
	t.Helper()
	var link netlink.Link
	s.do(t, func() error {
		var err error
		link, err = netlinksafe.LinkByName(name)
		return err
	})
	return link
}

// hasLink reports whether the namespace has a link called name.
func (s *sandbox) hasLink(t *testing.T, name string) bool {
	t.Helper()
	found := false
	s.do(t, func() error {
		_, err := netlinksafe.LinkByName(name)
		found = err == nil
		return nil
	})
	return found
}

// hostLink returns the host's link called name, failing the test without it.
func hostLink(t *testing.T, name string) netlink.Link {
	t.Helper()
	link, err := netlinksafe.LinkByName(name)
	if err != nil {
		t.Fatalf("host link %q: %v", name, err)
	}
	return link
}

// hostHasLink reports whether the host has a link called name.
func hostHasLink(name string) bool {
	_, err := netlinksafe.LinkByName(name)
	return err == nil
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
