// This file owns the node-wide lock that serialises the shared parts of ADD
// and GC (the bridge, its addresses and the firewall chains) across the
// plugin processes a runtime starts concurrently.

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// nodeLockPath is the lock file; /run is a tmpfs, so a reboot clears it.
const nodeLockPath = "/run/shoal/cni.lock"

// withNodeLock runs fn holding an exclusive flock on nodeLockPath. The kernel
// releases the lock if the process dies, so a crashed plugin cannot wedge the
// node.
func withNodeLock(fn func() error) (err error) {
	if err := os.MkdirAll(filepath.Dir(nodeLockPath), 0o755); err != nil {
		return fmt.Errorf("create the directory of lock file %s: %w", nodeLockPath, err)
	}
	f, err := os.OpenFile(nodeLockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open lock file %s: %w", nodeLockPath, err)
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", nodeLockPath, err)
	}
	defer func() {
		if uerr := unix.Flock(int(f.Fd()), unix.LOCK_UN); uerr != nil && err == nil {
			err = fmt.Errorf("unlock %s: %w", nodeLockPath, uerr)
		}
	}()
	return fn()
}
