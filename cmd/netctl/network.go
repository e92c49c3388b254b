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
	"github.com/shoal/shoal/internal/cli"
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
		Args: cli.ExactArgs(0, ""),
	}
	format, checkFormat := cli.AddFormatFlag(cmd, cli.FormatTable, cli.FormatJSON)
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
			if *format == cli.FormatJSON {
				for i := range usages {
					if err := usages[i].fillJSON(); err != nil {
						return err
					}
				}
				return cli.PrintJSONValue(a.stdout, usages)
			}
			return cli.PrintTable(a.stdout, networkHeader, networkRows(usages))
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
			cli.ShortID(n.GetId()),
			n.GetSpec().GetDriver(),
			cli.FormatVNI(n.GetVni()),
			strings.Join(subnets, ", "),
			strconv.Itoa(u.Used),
			free,
		})
	}
	return rows
}

// fillJSON sets the network's JSON form for printing.
func (u *networkUsage) fillJSON() error {
	raw, err := cli.ProtoJSON(u.network)
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
		Args: cli.ExactArgs(1, "NETWORK"),
	}
	format, checkFormat := cli.AddFormatFlag(cmd, cli.FormatPretty, cli.FormatJSON)
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
			if *format == cli.FormatJSON {
				if err := u.fillJSON(); err != nil {
					return err
				}
				return cli.PrintJSONValue(a.stdout, u)
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
	var f cli.Fields
	f.Add("ID", n.GetId())
	f.Add("Name", cli.OrDash(networkName(n)))
	f.Add("Driver", cli.OrDash(spec.GetDriver()))
	f.Add("VNI", cli.FormatVNI(n.GetVni()))
	f.Add("Attachable", strconv.FormatBool(spec.GetAttachable()))
	labels := spec.GetAnnotations().GetLabels()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		f.Add("Label", k+"="+labels[k])
	}
	f.Add("Used", strconv.Itoa(u.Used))
	f.Add("Free", formatCount(u.Free))
	for _, s := range u.Subnets {
		f.Section("Subnet " + s.Subnet)
		if s.Error != "" {
			f.Add("  Error", s.Error)
		}
		f.Add("  Gateway", cli.OrDash(s.Gateway))
		f.Add("  IP range", cli.OrDash(s.IPRange))
		for _, name := range slices.Sorted(maps.Keys(s.AuxAddresses)) {
			f.Add("  Aux address", name+"="+s.AuxAddresses[name])
		}
		free := formatCount(s.Free)
		if s.Error != "" {
			free = "-"
		}
		f.Add("  Used", strconv.FormatUint(s.Used, 10))
		f.Add("  Free", free)
		f.Add("  Cooling", strconv.Itoa(s.Cooling))
		f.Add("  Cursor", cli.OrDash(s.Cursor))
	}
	if plugins := spec.GetPlugins(); len(plugins) > 0 {
		f.Section("CNI plugins")
		for _, p := range plugins {
			f.Add("  "+p.GetType(), p.GetConfigJson())
		}
	}
	for _, c := range u.Conflicts {
		f.Add("Conflict", c)
	}
	return f.Write(w)
}
