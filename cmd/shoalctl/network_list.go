package main

// This file owns how networks print: the `network ls` table, in docker's
// columns plus SUBNETS and VNI, and `network inspect --pretty`. A plugin's
// configuration prints as the JSON it is, not as the base64 of its bytes
// that the JSON output carries.

import (
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

// networkScope is every network's SCOPE: a shoal network spans the cluster,
// as a docker swarm network does.
const networkScope = "swarm"

func newNetworkListCommand(a *app) *cobra.Command {
	var (
		format string
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List networks",
		Long:    "List networks, sorted by name.",
		Args:    exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat("format", format, formatTable, formatJSON); err != nil {
				return err
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				resp, err := c.ListNetworks(ctx, &api.ListNetworksRequest{})
				if err != nil {
					return fmt.Errorf("list networks: %w", err)
				}
				return printListing(a.stdout, resp.GetNetworks(), networkName, quiet, format, func(ns []*api.Network) error {
					return printNetworkTable(a.stdout, ns)
				})
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", formatTable, "output format: table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only network IDs")
	return cmd
}

func networkName(n *api.Network) string { return n.GetSpec().GetAnnotations().GetName() }

// printNetworkTable prints networks like `docker network ls`, with their
// subnets and VNI.
func printNetworkTable(w io.Writer, networks []*api.Network) error {
	rows := make([][]string, 0, len(networks))
	for _, n := range networks {
		var subnets []string
		for _, c := range n.GetSpec().GetIpam() {
			subnets = append(subnets, c.GetSubnet())
		}
		rows = append(rows, []string{
			shortID(n.GetId(), false),
			networkName(n),
			n.GetSpec().GetDriver(),
			networkScope,
			strings.Join(subnets, ", "),
			formatVNI(n.GetVni()),
		})
	}
	return printTable(w, []string{"NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNETS", "VNI"}, rows)
}

// formatVNI prints a VNI, or "-" before the cluster has allocated one.
func formatVNI(vni uint32) string {
	if vni == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(vni), 10)
}

// printNetworkPretty prints one network for a human.
func printNetworkPretty(w io.Writer, n *api.Network) error {
	spec := n.GetSpec()
	var f fieldList
	f.add("ID", n.GetId())
	f.add("Name", orDash(networkName(n)))
	f.add("Labels", orDash(formatLabels(spec.GetAnnotations().GetLabels())))
	f.add("Created at", formatTime(n.GetMeta().GetCreatedAt()))
	f.add("Updated at", formatTime(n.GetMeta().GetUpdatedAt()))
	f.add("Driver", orDash(spec.GetDriver()))
	f.add("Scope", networkScope)
	f.add("VNI", formatVNI(n.GetVni()))
	f.add("Attachable", strconv.FormatBool(spec.GetAttachable()))
	for _, c := range spec.GetIpam() {
		f.section("Subnet " + c.GetSubnet())
		f.add("  Gateway", orDash(c.GetGateway()))
		f.add("  IP range", orDash(c.GetIpRange()))
		aux := c.GetAuxAddresses()
		for _, name := range slices.Sorted(maps.Keys(aux)) {
			f.add("  Aux address", name+"="+aux[name])
		}
	}
	if len(spec.GetPlugins()) > 0 {
		f.section("CNI plugins")
		for _, p := range spec.GetPlugins() {
			f.add("  "+p.GetType(), p.GetConfigJson())
		}
	}
	return f.write(w)
}
