package cni

// This file owns RemoveNetwork: taking a network off the node once no attachment uses it.

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/shoal/shoal/api"
)

// RemoveNetwork deletes network n's bridge from the node and, through its plugins' GC, what
// the plugins made for it (shoal-bridge's firewall rules of bridges that are gone); it forgets
// n. It refuses while an attachment to n is cached: a sandbox must be detached first. A bridge
// already gone is fine.
func (m *Manager) RemoveNetwork(ctx context.Context, n *api.Network) error {
	m.gcMu.Lock()
	defer m.gcMu.Unlock()
	cached, err := m.cni.GetCachedAttachments("")
	if err != nil {
		return fmt.Errorf("remove network %s: read cached attachments: %w", describe(n), err)
	}
	for _, a := range cached {
		if a.Network == n.GetId() {
			return fmt.Errorf("remove network %s: sandbox %s is still attached (%s)", describe(n), a.ContainerID, a.IfName)
		}
	}
	list, err := m.confListOf(n)
	if err != nil {
		return fmt.Errorf("remove network %s: %w", describe(n), err)
	}
	bridge := BridgeName(n.GetId())
	if link, err := netlink.LinkByName(bridge); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			return fmt.Errorf("remove network %s: delete bridge %s: %w", describe(n), bridge, err)
		}
	} else if !errors.As(err, &netlink.LinkNotFoundError{}) {
		return fmt.Errorf("remove network %s: look up bridge %s: %w", describe(n), bridge, err)
	}
	if err := m.cni.GCNetworkList(ctx, list, nil); err != nil {
		return fmt.Errorf("remove network %s: plugins' GC: %w", describe(n), err)
	}
	m.mu.Lock()
	delete(m.networks, n.GetId())
	m.mu.Unlock()
	m.log.Info("network removed from the node", "network", describe(n), "bridge", bridge)
	return nil
}

// NetworkIDs lists the networks the manager knows, by ID.
func (m *Manager) NetworkIDs() []string {
	var ids []string
	for _, n := range m.knownNetworks() {
		ids = append(ids, n.GetId())
	}
	return ids
}

// RemoveNetworkByID is RemoveNetwork of the known network id; a network the manager never knew
// was never on the node, and is fine.
func (m *Manager) RemoveNetworkByID(ctx context.Context, id string) error {
	n := m.network(id)
	if n == nil {
		return nil
	}
	return m.RemoveNetwork(ctx, n)
}
