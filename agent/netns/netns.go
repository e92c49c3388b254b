// Package netns pins network namespaces to files: a task's namespace is made
// empty by the agent and bind-mounted at a path it chooses, so it lives as
// long as the pin, whatever runs in it. Containers join it by that path (the
// sandbox's pause process setns(2)es into it), and CNI plugins attach to it
// by that path, which stays the same across agent restarts.
//
// It is the node's side of what a runtime's "pinns" does; it imports only
// golang.org/x/sys, netlink and the CNI plugins' ns helpers.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Pin makes a new network namespace, with only its loopback device, up,
// and pins it at path, whose directory it creates. A pin or a file at path
// is replaced.
func Pin(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pin a netns at %s: %w", path, err)
	}
	if err := Unpin(path); err != nil {
		return fmt.Errorf("pin a netns at %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("pin a netns at %s: %w", path, err)
	}
	f.Close()

	// unshare(2) moves only the calling thread: do it on a locked thread
	// and move that thread back. A thread that cannot go back stays locked,
	// so no other goroutine runs in the new namespace (the runtime ends the
	// thread with its goroutine).
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		orig, err := os.Open(self)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open this thread's netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("unshare: %w", err)
			return
		}
		err = loopbackUp()
		if err == nil {
			if err = unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
				err = fmt.Errorf("bind-mount %s: %w", self, err)
			}
		}
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
			done <- errors.Join(err, fmt.Errorf("return to the agent's netns: %w", serr))
			return // still locked: the thread goes with this goroutine
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	if err := <-done; err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("pin a netns at %s: %w", path, err)
	}
	return nil
}

// loopbackUp sets lo up in the calling thread's netns.
func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// Unpin unmounts the pin at path and removes the file. The namespace ends
// once nothing else holds it. No file at path is fine.
func Unpin(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		// EINVAL: not a mount point (a file left by a Pin that failed).
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	return nil
}

// Pinned says whether path is a network namespace (a pin, or a process's
// /proc/<pid>/ns/net).
func Pinned(path string) bool {
	return ns.IsNSorErr(path) == nil
}

// Same says whether the namespaces at paths a and b are one namespace.
func Same(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, fmt.Errorf("stat %s: %w", a, err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, fmt.Errorf("stat %s: %w", b, err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// List returns the names of the pins in dir; no dir is an empty list.
func List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pinned netns: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
