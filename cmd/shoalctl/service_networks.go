package main

// This file owns the "Networks" section of `service inspect --pretty`:
// each network the service is attached to, by name, with its aliases and
// pins (--ip, --ip-range) from the spec, and its addresses from the
// manager's bindings: the VIP, then each slot's (each node's, for a global
// service) address and state. The JSON form of inspect stays the service
// object as stored; `netctl ip ls --service S --format json` dumps the
// bindings.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

// serviceNetworks is what the section shows beyond the spec: the service's
// bindings and the names of the networks and nodes they name.
type serviceNetworks struct {
	bindings []*api.IPBinding
	names    tableNames
}

// printServiceSummary is `service inspect --pretty`: it asks the manager
// for the service's bindings when the service has networks.
func printServiceSummary(ctx context.Context, c api.ControlClient, w io.Writer, svc *api.Service) error {
	nets, err := fetchServiceNetworks(ctx, c, svc)
	if err != nil {
		return err
	}
	return printServicePretty(w, svc, nets)
}

// fetchServiceNetworks reads the service's bindings and the names they
// need; nothing when the service has no network and no binding to show.
func fetchServiceNetworks(ctx context.Context, c api.ControlClient, svc *api.Service) (*serviceNetworks, error) {
	if len(svc.GetSpec().GetTask().GetNetworks()) == 0 {
		return &serviceNetworks{}, nil
	}
	resp, err := c.ListBindings(ctx, &api.ListBindingsRequest{ServiceIds: []string{svc.GetId()}})
	if err != nil {
		return nil, fmt.Errorf("list the bindings of service %s: %w", serviceName(svc), err)
	}
	nets := &serviceNetworks{bindings: resp.GetBindings()}
	networks, err := c.ListNetworks(ctx, &api.ListNetworksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	nets.names.networks = make(map[string]string, len(networks.GetNetworks()))
	for _, n := range networks.GetNetworks() {
		nets.names.networks[n.GetId()] = networkName(n)
	}
	if slices.ContainsFunc(nets.bindings, func(b *api.IPBinding) bool { return b.GetKind() == api.IPBinding_KIND_NODE }) {
		nodes, err := c.ListNodes(ctx, &api.ListNodesRequest{})
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		nets.names.hosts = make(map[string]string, len(nodes.GetNodes()))
		for _, n := range nodes.GetNodes() {
			nets.names.hosts[n.GetId()] = n.GetDescription().GetHostname()
		}
	}
	return nets, nil
}

// add adds the section: the spec's attachments in order, then any
// network the service still has bindings on but is no longer attached to.
func (nets *serviceNetworks) add(f *cli.Fields, spec *api.ServiceSpec) {
	attachments := spec.GetTask().GetNetworks()
	if len(attachments) == 0 && len(nets.bindings) == 0 {
		return
	}
	f.Section("Networks")
	seen := map[string]bool{}
	for _, n := range attachments {
		seen[n.GetTarget()] = true
		f.Section("  " + cmp.Or(nets.names.networks[n.GetTarget()], n.GetTarget()))
		f.Add("    ID", n.GetTarget())
		if len(n.GetAliases()) > 0 {
			f.Add("    Aliases", strings.Join(n.GetAliases(), ", "))
		}
		if len(n.GetIps()) > 0 {
			f.Add("    Pins", sortedPins(n.GetIps()))
		}
		if n.GetIpRange() != "" {
			f.Add("    IP range", n.GetIpRange())
		}
		nets.addBindings(f, n.GetTarget())
	}
	for _, b := range nets.bindings {
		if id := b.GetNetworkId(); !seen[id] {
			seen[id] = true
			f.Section("  " + cmp.Or(nets.names.networks[id], id) + " (detached)")
			f.Add("    ID", id)
			nets.addBindings(f, id)
		}
	}
	if spec.GetIpHold().AsDuration() > 0 {
		f.Add("  IP hold", formatDuration(spec.GetIpHold()))
	} else {
		f.Add("  IP hold", "until the service is removed")
	}
}

// addBindings adds one line per binding on network: the VIP, then slots in
// order, then nodes by hostname.
func (nets *serviceNetworks) addBindings(f *cli.Fields, network string) {
	var on []*api.IPBinding
	for _, b := range nets.bindings {
		if b.GetNetworkId() == network {
			on = append(on, b)
		}
	}
	host := func(b *api.IPBinding) string { return cmp.Or(nets.names.hosts[b.GetNodeId()], b.GetNodeId()) }
	slices.SortStableFunc(on, func(x, y *api.IPBinding) int {
		return cmp.Or(cmp.Compare(bindingOrder(x), bindingOrder(y)),
			cmp.Compare(x.GetSlot(), y.GetSlot()), cmp.Compare(host(x), host(y)))
	})
	for _, b := range on {
		var key string
		switch b.GetKind() {
		case api.IPBinding_KIND_VIP:
			key = "VIP"
		case api.IPBinding_KIND_NODE:
			key = "Node " + host(b)
		default:
			key = "Slot " + strconv.FormatUint(b.GetSlot(), 10)
		}
		value := b.GetAddress()
		if b.GetKind() != api.IPBinding_KIND_VIP {
			value += " (" + cli.BindingState(b) + ")"
		}
		f.Add("    "+key, value)
	}
}

// bindingOrder puts the VIP first, then slots, then nodes.
func bindingOrder(b *api.IPBinding) int {
	switch b.GetKind() {
	case api.IPBinding_KIND_VIP:
		return 0
	case api.IPBinding_KIND_SLOT:
		return 1
	}
	return 2
}
