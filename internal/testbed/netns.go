package testbed

// This file owns named network namespaces (those ip-netns(8) pins under NetnsDir) and the ip(8)
// runner every piece of plumbing goes through.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// NetnsDir is where ip-netns(8) pins named network namespaces.
const NetnsDir = "/run/netns"

// plumbingTimeout bounds one ip(8) call.
const plumbingTimeout = 30 * time.Second

// ipCmd runs ip(8) with args; its error carries the command line and ip's own message.
func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), plumbingTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// NetnsPath is the pin file of the named network namespace.
func NetnsPath(name string) string { return filepath.Join(NetnsDir, name) }

// NetnsExists tells whether the named network namespace exists.
func NetnsExists(name string) bool {
	_, err := os.Stat(NetnsPath(name))
	return err == nil
}

// AddNetns creates the named network namespace with its loopback up. If the loopback cannot be
// brought up, the namespace is deleted again.
func AddNetns(name string) (err error) {
	if err := ipCmd("netns", "add", name); err != nil {
		return fmt.Errorf("create network namespace %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, DeleteNetns(name))
		}
	}()
	if err := ipCmd("-n", name, "link", "set", "lo", "up"); err != nil {
		return fmt.Errorf("bring up lo in network namespace %s: %w", name, err)
	}
	return nil
}

// DeleteNetns deletes the named network namespace, and with it every link in it; a namespace
// that is already gone is no error.
func DeleteNetns(name string) error {
	if !NetnsExists(name) {
		return nil
	}
	if err := ipCmd("netns", "delete", name); err != nil {
		return fmt.Errorf("delete network namespace %s: %w", name, err)
	}
	return nil
}

// ListNetns returns the names of the named network namespaces, sorted; none when NetnsDir does
// not exist.
func ListNetns() ([]string, error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}
