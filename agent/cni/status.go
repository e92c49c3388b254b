package cni

// This file owns Status: asking each known network's plugins (CNI STATUS, spec
// 1.1.0) whether they can serve ADDs, one plugin at a time so the answer names
// the plugin that cannot.

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/libcni"

	"github.com/shoal/shoal/api"
)

// Status returns nil when every plugin of every network known through
// SetNetworks reports it is ready, and otherwise an error per network naming
// the first plugin that is not and carrying its error (a *types.Error from
// github.com/containernetworking/cni/pkg/types when the plugin answered, for
// example code 50, "plugin not available"). A missing plugin binary is an
// error too.
func (m *Manager) Status(ctx context.Context) error {
	var errs []error
	for _, n := range m.knownNetworks() {
		if err := m.networkStatus(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// networkStatus asks n's plugins in chain order, stopping at the first that is
// not ready.
func (m *Manager) networkStatus(ctx context.Context, n *api.Network) error {
	list, err := m.confListOf(n)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	for i, p := range list.Plugins {
		one := &libcni.NetworkConfigList{Name: list.Name, CNIVersion: list.CNIVersion, Plugins: []*libcni.PluginConfig{p}}
		if err := m.cni.GetStatusNetworkList(ctx, one); err != nil {
			return fmt.Errorf("network %s: plugin %d of the chain (%s) is not ready: %w", describe(n), i, p.Network.Type, err)
		}
	}
	return nil
}

// describe names a network for operators: its ID, and its name when it has one.
func describe(n *api.Network) string {
	if name := n.GetSpec().GetAnnotations().GetName(); name != "" {
		return fmt.Sprintf("%s (%s)", n.GetId(), name)
	}
	return n.GetId()
}

// statusProbe is the network NodeStatus renders shoal's own chain for: STATUS asks whether the
// plugins can serve ADDs on this node, which does not depend on a network's addresses.
var statusProbe = &api.Network{Id: "shoal-status-probe", Spec: &api.NetworkSpec{
	Annotations: &api.Annotations{Name: "status probe"}, Driver: "overlay",
	Ipam: []*api.IPAMConfig{{Subnet: "198.18.255.252/30"}}}}

// NodeStatus asks shoal's own plugins (shoal-bridge and its IPAM plugin) whether they can serve
// ADDs on this node; nil when they can. It is the node's readiness for new tasks: a network's
// extra plugins are the network's business, and a missing or failing one fails the ADDs of that
// network's tasks, naming the plugin, without keeping the node from running other tasks.
func (m *Manager) NodeStatus(ctx context.Context) error {
	return m.networkStatus(ctx, statusProbe)
}
