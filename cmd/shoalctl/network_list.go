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
	"github.com/shoal/shoal/internal/cli"
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
		Args:    cli.ExactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.CheckFormat("format", format, cli.FormatTable, cli.FormatJSON); err != nil {
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
	cmd.Flags().StringVar(&format, "format", cli.FormatTable, "output format: table or json")
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
			cli.FormatVNI(n.GetVni()),
		})
	}
	return cli.PrintTable(w, []string{"NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNETS", "VNI"}, rows)
}

// printNetworkPretty prints one network for a human.
func printNetworkPretty(w io.Writer, n *api.Network) error {
	spec := n.GetSpec()
	var f cli.Fields
	f.Add("ID", n.GetId())
	f.Add("Name", cli.OrDash(networkName(n)))
	f.Add("Labels", cli.OrDash(formatLabels(spec.GetAnnotations().GetLabels())))
	f.Add("Created at", formatTime(n.GetMeta().GetCreatedAt()))
	f.Add("Updated at", formatTime(n.GetMeta().GetUpdatedAt()))
	f.Add("Driver", cli.OrDash(spec.GetDriver()))
	f.Add("Scope", networkScope)
	f.Add("VNI", cli.FormatVNI(n.GetVni()))
	f.Add("Attachable", strconv.FormatBool(spec.GetAttachable()))
	for _, c := range spec.GetIpam() {
		f.Section("Subnet " + c.GetSubnet())
		f.Add("  Gateway", cli.OrDash(c.GetGateway()))
		f.Add("  IP range", cli.OrDash(c.GetIpRange()))
		aux := c.GetAuxAddresses()
		for _, name := range slices.Sorted(maps.Keys(aux)) {
			f.Add("  Aux address", name+"="+aux[name])
		}
	}
	if len(spec.GetPlugins()) > 0 {
		f.Section("CNI plugins")
		for _, p := range spec.GetPlugins() {
			f.Add("  "+p.GetType(), p.GetConfigJson())
		}
	}
	return f.Write(w)
}
