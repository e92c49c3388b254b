package main

// This file owns the network commands: `network ls`, how many addresses
// each network has bound and free, and `network inspect`, a network's spec
// and each subnet's use, with its allocation record (cooling addresses,
// the serial cursor). network_usage.go counts.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
)

func newNetworkCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Show networks and how their addresses are used",
		Long: "Show networks and how their addresses are used. NETWORK is a network\n" +
			"name, ID or unique ID prefix. (shoalctl network creates and removes them.)",
	}
	cmd.AddCommand(newNetworkListCommand(a), newNetworkInspectCommand(a))
	return cmd
}

func newNetworkListCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List networks with their used and free addresses",
		Long: "List networks, sorted by name. USED counts the addresses bound on the\n" +
			"network (slots, global services' nodes and VIPs); FREE counts the\n" +
			"addresses automatic allocation may still hand out: the dynamic range\n" +
			"(--ip-range, else the subnet) less the gateway, aux addresses and bound\n" +
			"addresses. Addresses cooling down after a release are not subtracted;\n" +
			"`netctl network inspect` counts them.",
		Args: exactArgs(0, ""),
	}
	format, checkFormat := addFormatFlag(cmd, formatTable, formatJSON)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(); err != nil {
			return err
		}
		return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
			nets, err := c.ListNetworks(ctx, &api.ListNetworksRequest{})
			if err != nil {
				return fmt.Errorf("list networks: %w", err)
			}
			bindings, err := c.ListBindings(ctx, &api.ListBindingsRequest{})
			if err != nil {
				return fmt.Errorf("list bindings: %w", err)
			}
			networks := nets.GetNetworks()
			slices.SortFunc(networks, func(x, y *api.Network) int {
				return cmp.Or(cmp.Compare(networkName(x), networkName(y)), cmp.Compare(x.GetId(), y.GetId()))
			})
			usages := make([]networkUsage, len(networks))
			for i, n := range networks {
				usages[i] = usageOf(n, bindings.GetBindings())
			}
			if *format == formatJSON {
				for i := range usages {
					if err := usages[i].fillJSON(); err != nil {
						return err
					}
				}
				return printJSONValue(a.stdout, usages)
			}
			return printTable(a.stdout, networkHeader, networkRows(usages))
		})
	}
	return cmd
}

func networkName(n *api.Network) string { return n.GetSpec().GetAnnotations().GetName() }

var networkHeader = []string{"NAME", "ID", "DRIVER", "VNI", "SUBNETS", "USED", "FREE"}

// networkRows are the rows of `network ls`. FREE is "-" when no subnet's
// pool could be built.
func networkRows(usages []networkUsage) [][]string {
	rows := make([][]string, 0, len(usages))
	for _, u := range usages {
		n := u.network
		var subnets []string
		pools := 0
		for _, s := range u.Subnets {
			subnets = append(subnets, s.Subnet)
			if s.Error == "" {
				pools++
			}
		}
		free := formatCount(u.Free)
		if pools == 0 {
			free = "-"
		}
		rows = append(rows, []string{
			networkName(n),
			shortID(n.GetId()),
			n.GetSpec().GetDriver(),
			formatVNI(n.GetVni()),
			strings.Join(subnets, ", "),
			strconv.Itoa(u.Used),
			free,
		})
	}
	return rows
}

// formatVNI prints a VNI, or "-" before the cluster has allocated one.
func formatVNI(vni uint32) string {
	if vni == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(vni), 10)
}

// fillJSON sets the network's JSON form for printing.
func (u *networkUsage) fillJSON() error {
	raw, err := protoJSON(u.network)
	u.Network = raw
	return err
}

func newNetworkInspectCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect NETWORK",
		Short: "Show a network's spec and how each subnet's addresses are used",
		Long: "Show a network's spec, VNI and, per subnet, the gateway, the dynamic range,\n" +
			"the aux addresses, how many addresses are bound, free and cooling down,\n" +
			"and the cursor serial allocation continues after. Bound addresses the\n" +
			"network's pools refuse (outside every subnet, the gateway, bound twice)\n" +
			"are listed as conflicts. --format json prints the network as stored with\n" +
			"these counts.",
		Args: exactArgs(1, "NETWORK"),
	}
	format, checkFormat := addFormatFlag(cmd, formatPretty, formatJSON)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(); err != nil {
			return err
		}
		return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
			resp, err := c.GetNetwork(ctx, &api.GetNetworkRequest{NetworkId: args[0]})
			if err != nil {
				return fmt.Errorf("get network %s: %w", args[0], err)
			}
			n := resp.GetNetwork()
			if n == nil {
				return fmt.Errorf("get network %s: the manager answered without a network", args[0])
			}
			bindings, err := c.ListBindings(ctx, &api.ListBindingsRequest{NetworkIds: []string{n.GetId()}})
			if err != nil {
				return fmt.Errorf("list the bindings of network %s: %w", args[0], err)
			}
			u := usageOf(n, bindings.GetBindings())
			if *format == formatJSON {
				if err := u.fillJSON(); err != nil {
					return err
				}
				return printJSONValue(a.stdout, u)
			}
			return printNetworkPretty(a.stdout, u)
		})
	}
	return cmd
}

// printNetworkPretty prints one network and its use for a human.
func printNetworkPretty(w io.Writer, u networkUsage) error {
	n := u.network
	spec := n.GetSpec()
	f := []field{
		{"ID", n.GetId()},
		{"Name", orDash(networkName(n))},
		{"Driver", orDash(spec.GetDriver())},
		{"VNI", formatVNI(n.GetVni())},
		{"Attachable", strconv.FormatBool(spec.GetAttachable())},
	}
	labels := spec.GetAnnotations().GetLabels()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		f = append(f, field{"Label", k + "=" + labels[k]})
	}
	f = append(f, field{"Used", strconv.Itoa(u.Used)}, field{"Free", formatCount(u.Free)})
	for _, s := range u.Subnets {
		f = append(f, field{"Subnet " + s.Subnet, ""})
		if s.Error != "" {
			f = append(f, field{"  Error", s.Error})
		}
		f = append(f, field{"  Gateway", orDash(s.Gateway)}, field{"  IP range", orDash(s.IPRange)})
		for _, name := range slices.Sorted(maps.Keys(s.AuxAddresses)) {
			f = append(f, field{"  Aux address", name + "=" + s.AuxAddresses[name]})
		}
		free := formatCount(s.Free)
		if s.Error != "" {
			free = "-"
		}
		f = append(f,
			field{"  Used", strconv.FormatUint(s.Used, 10)},
			field{"  Free", free},
			field{"  Cooling", strconv.Itoa(s.Cooling)},
			field{"  Cursor", orDash(s.Cursor)})
	}
	if plugins := spec.GetPlugins(); len(plugins) > 0 {
		f = append(f, field{"CNI plugins", ""})
		for _, p := range plugins {
			f = append(f, field{"  " + p.GetType(), p.GetConfigJson()})
		}
	}
	for _, c := range u.Conflicts {
		f = append(f, field{"Conflict", c})
	}
	return printFields(w, f)
}
