package cni

// This file owns taking attachments down from libcni's cache: DetachSandbox for
// one sandbox, GC for every sandbox the caller no longer has. Both DEL with the
// cached conflist and arguments, not the network's current configuration: the
// DEL undoes what that ADD did, whatever the network became or if it is gone.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// DetachSandbox DELs every attachment cached for the sandbox, in the given
// netns ("" when it is gone). It needs neither SetNetworks nor the attaching
// Manager: the cache under Config.CacheDir is enough. A sandbox with nothing
// cached is done, so calling again succeeds; an attachment whose DEL failed
// stays cached for the next call. Errors are joined.
func (m *Manager) DetachSandbox(ctx context.Context, sandboxID, netns string) error {
	m.gcMu.RLock()
	defer m.gcMu.RUnlock()
	cached, err := m.cachedBySandbox(sandboxID)
	if err != nil {
		return fmt.Errorf("detach sandbox: %w", err)
	}
	// The reverse of the order AttachTask added them in.
	keys := slices.SortedFunc(maps.Keys(cached), func(a, b cacheKey) int {
		return compareIfNames(b.ifName, a.ifName)
	})
	var errs []error
	for _, k := range keys {
		if err := m.delCached(ctx, cached[k], netns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// delCached DELs one cached attachment with its cached conflist and arguments;
// libcni drops it from the cache when the DEL succeeds.
func (m *Manager) delCached(ctx context.Context, a *libcni.NetworkAttachment, netns string) error {
	list, err := libcni.ConfListFromBytes(a.Config)
	if err != nil {
		return fmt.Errorf("detach sandbox %s from network %s (%s): parse cached conflist: %w", a.ContainerID, a.Network, a.IfName, err)
	}
	if err := m.cni.DelNetworkList(ctx, list, runtimeConfOf(a, netns)); err != nil {
		return fmt.Errorf("detach sandbox %s from network %s (%s): %w", a.ContainerID, a.Network, a.IfName, err)
	}
	m.log.Info("detached", "sandbox", a.ContainerID, "network", a.Network, "ifname", a.IfName)
	return nil
}

// GC removes what the plugins hold for sandboxes not in validSandboxIDs. For
// each network with cached attachments or known through SetNetworks, it DELs
// the cached attachments of other sandboxes (without a namespace: theirs is
// gone), then runs libcni's GCNetworkList with the attachments
// of the valid sandboxes, so that plugins drop what no cache entry records
// (leaked veths of an ADD the agent did not finish). A network known through
// SetNetworks is collected with its current conflist, any other with a cached
// one. GC waits for AttachTask and DetachSandbox calls in flight and holds new
// ones back until it is done. Errors are joined.
func (m *Manager) GC(ctx context.Context, validSandboxIDs []string) error {
	m.gcMu.Lock()
	defer m.gcMu.Unlock()
	all, err := m.cni.GetCachedAttachments("")
	if err != nil {
		return fmt.Errorf("gc: read cached attachments: %w", err)
	}
	valid := make(map[string]bool, len(validSandboxIDs))
	for _, id := range validSandboxIDs {
		valid[id] = true
	}
	byNetwork := map[string][]*libcni.NetworkAttachment{}
	for _, a := range all {
		byNetwork[a.Network] = append(byNetwork[a.Network], a)
	}
	lists, errs := m.gcLists(byNetwork)

	for _, name := range slices.Sorted(maps.Keys(lists)) {
		validAtts := []types.GCAttachment{} // [] rather than null on the wire
		for _, a := range byNetwork[name] {
			if valid[a.ContainerID] {
				validAtts = append(validAtts, types.GCAttachment{ContainerID: a.ContainerID, IfName: a.IfName})
				continue
			}
			m.log.Info("gc: deleting attachment of a sandbox that is gone", "sandbox", a.ContainerID, "network", name, "ifname", a.IfName)
			// Without the namespace: the sandbox is gone, and the process ID in its cached
			// /proc/<pid>/ns/net may be another sandbox's by now.
			if err := m.delCached(ctx, a, ""); err != nil {
				errs = append(errs, fmt.Errorf("gc: %w", err))
			}
		}
		if err := m.cni.GCNetworkList(ctx, lists[name], &libcni.GCArgs{ValidAttachments: validAtts}); err != nil {
			errs = append(errs, fmt.Errorf("gc: network %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// gcLists returns the conflist GC runs each network's plugins with: the
// rendered one of a known network, else the cached one of its first
// attachment. A network neither yields is left out, with an error.
func (m *Manager) gcLists(byNetwork map[string][]*libcni.NetworkAttachment) (map[string]*libcni.NetworkConfigList, []error) {
	lists := map[string]*libcni.NetworkConfigList{}
	var errs []error
	for _, n := range m.knownNetworks() {
		list, err := m.confListOf(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("gc: %w", err))
			continue
		}
		lists[n.GetId()] = list
	}
	for name, atts := range byNetwork {
		if _, ok := lists[name]; ok {
			continue
		}
		list, err := libcni.ConfListFromBytes(atts[0].Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("gc: network %s: parse cached conflist of sandbox %s (%s): %w", name, atts[0].ContainerID, atts[0].IfName, err))
			continue
		}
		lists[name] = list
	}
	return lists, errs
}

// compareIfNames orders eth2 before eth10: by length, then bytes.
func compareIfNames(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return cmp.Compare(a, b)
}
