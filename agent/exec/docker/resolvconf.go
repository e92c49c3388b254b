package docker

// This file owns the tasks' /etc/resolv.conf: a task on networks resolves through the embedded
// DNS server of its node, which listens on each network's gateway address (the same on every
// node, so the file stays right wherever the task runs). The executor writes one file per task
// under Config.ResolvConfDir and bind-mounts it read-only into the task's container; the engine
// then leaves the container's resolv.conf alone.

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/mount"

	"github.com/shoal/shoal/api"
)

// resolvConfPath is where task taskID's resolv.conf is kept.
func (e *Executor) resolvConfPath(taskID string) string {
	return filepath.Join(e.cfg.ResolvConfDir, taskID+".conf")
}

// resolvConfText is a resolv.conf naming servers. ndots:0 makes a resolver send a service's bare
// name ("web", "tasks.web", "2.web") as it is, with no search suffix first.
func resolvConfText(servers []netip.Addr) string {
	var b strings.Builder
	b.WriteString("# written by shoal: the node's embedded DNS server on the task's networks\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	b.WriteString("options ndots:0\n")
	return b.String()
}

// resolvConfMount writes task t's resolv.conf and returns its mount; ok is false when the task
// gets the engine's (no DNS servers configured, or none on its networks).
func (e *Executor) resolvConfMount(t *api.Task) (m mount.Mount, ok bool, err error) {
	if e.cfg.ResolvConfDir == "" || e.cfg.Nameservers == nil {
		return mount.Mount{}, false, nil
	}
	servers := e.cfg.Nameservers(t)
	if len(servers) == 0 {
		return mount.Mount{}, false, nil
	}
	if err := os.MkdirAll(e.cfg.ResolvConfDir, 0o755); err != nil {
		return mount.Mount{}, false, fmt.Errorf("make the resolv.conf folder: %w", err)
	}
	path := e.resolvConfPath(t.GetId())
	if err := os.WriteFile(path, []byte(resolvConfText(servers)), 0o644); err != nil {
		return mount.Mount{}, false, fmt.Errorf("write the task's resolv.conf: %w", err)
	}
	return mount.Mount{Type: mount.TypeBind, Source: path, Target: "/etc/resolv.conf", ReadOnly: true}, true, nil
}

// removeResolvConf removes task taskID's resolv.conf, if any.
func (e *Executor) removeResolvConf(taskID string) {
	if e.cfg.ResolvConfDir == "" {
		return
	}
	if err := os.Remove(e.resolvConfPath(taskID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		e.log.Warn("remove a task's resolv.conf", "task", taskID, "err", err)
	}
}

// collectResolvConfs removes the resolv.conf files of tasks that have no sandbox.
func (e *Executor) collectResolvConfs(hasSandbox map[string]bool) {
	if e.cfg.ResolvConfDir == "" {
		return
	}
	entries, err := os.ReadDir(e.cfg.ResolvConfDir)
	if err != nil {
		return
	}
	for _, ent := range entries {
		taskID, ok := strings.CutSuffix(ent.Name(), ".conf")
		if !ok || hasSandbox[taskID] {
			continue
		}
		e.removeResolvConf(taskID)
	}
}
