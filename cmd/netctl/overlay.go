package main

// This file owns the overlay commands: `overlay ls`, each network's VXLAN segment as the leader's
// endpoint views have it, and `overlay inspect`, one network on one node, the kernel's device and
// entries next to what the cluster wants (overlay_diff.go compares).

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newOverlayCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "overlay",
		Short: "Show the networks' VXLAN overlay: endpoints, and what each node's kernel has",
		Long: "Show the networks' VXLAN overlay. Each network is one L2 segment across the\n" +
			"nodes: every node running a task of it has a VXLAN device (the network's VNI,\n" +
			"its data-path address as local VTEP, learning off) on the network's bridge, a\n" +
			"forwarding (FDB) entry and a neighbour entry per task on another node, and an\n" +
			"all-zeros FDB entry per other node for broadcasts; the bridge has a static\n" +
			"forwarding entry on the device's port per task on another node, so frames to\n" +
			"it are not flooded. The leader answers.",
	}
	cmd.AddCommand(newOverlayListCommand(a), newOverlayInspectCommand(a))
	return cmd
}

// overlayRow is one network in `overlay ls`.
type overlayRow struct {
	Network   string   `json:"network"`
	NetworkID string   `json:"network_id"`
	VNI       uint32   `json:"vni"`
	Subnets   []string `json:"subnets"`
	Endpoints int      `json:"endpoints"`
	VTEPs     []string `json:"vteps"`
}

func newOverlayListCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List networks with their VNI, endpoints and the nodes they span",
		Long: "List networks, sorted by name: VNI, subnets, ENDPOINTS (RUNNING tasks on\n" +
			"nodes that are up, which every node forwards to) and VTEPS (the data-path\n" +
			"addresses of the nodes they run on).",
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
			eps, err := c.ListOverlayEndpoints(ctx, &api.ListOverlayEndpointsRequest{})
			if err != nil {
				return fmt.Errorf("list endpoints: %w", err)
			}
			rows := overlayRows(nets.GetNetworks(), eps.GetEndpoints())
			if *format == cli.FormatJSON {
				return cli.PrintJSONValue(a.stdout, rows)
			}
			table := make([][]string, 0, len(rows))
			for _, r := range rows {
				table = append(table, []string{r.Network, cli.FormatVNI(r.VNI), cli.OrDash(strings.Join(r.Subnets, ",")),
					strconv.Itoa(r.Endpoints), cli.OrDash(strings.Join(r.VTEPs, ","))})
			}
			return cli.PrintTable(a.stdout, []string{"NETWORK", "VNI", "SUBNETS", "ENDPOINTS", "VTEPS"}, table)
		})
	}
	return cmd
}

// overlayRows summarises each network's endpoints.
func overlayRows(nets []*api.Network, eps []*api.Endpoint) []overlayRow {
	byNet := map[string][]*api.Endpoint{}
	for _, ep := range eps {
		byNet[ep.GetNetworkId()] = append(byNet[ep.GetNetworkId()], ep)
	}
	rows := make([]overlayRow, 0, len(nets))
	for _, n := range nets {
		r := overlayRow{Network: networkName(n), NetworkID: n.GetId(), VNI: n.GetVni(), Endpoints: len(byNet[n.GetId()])}
		for _, s := range n.GetSpec().GetIpam() {
			r.Subnets = append(r.Subnets, s.GetSubnet())
		}
		for _, ep := range byNet[n.GetId()] {
			if !slices.Contains(r.VTEPs, ep.GetVtep()) {
				r.VTEPs = append(r.VTEPs, ep.GetVtep())
			}
		}
		slices.SortFunc(r.VTEPs, compareAddrs)
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(x, y overlayRow) int {
		return cmp.Or(cmp.Compare(x.Network, y.Network), cmp.Compare(x.NetworkID, y.NetworkID))
	})
	return rows
}

func newOverlayInspectCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect NETWORK",
		Short: "Show a network's overlay on a node: the kernel's entries next to the desired ones",
		Long: "Show a network's overlay on one node (--node, a hostname, ID or unique ID\n" +
			"prefix; default: the manager answering): its VXLAN device and every FDB,\n" +
			"neighbour and bridge forwarding entry (on the device's port, static or\n" +
			"learnt), desired (from the leader's endpoint views) next to\n" +
			"programmed (read from the node's kernel by its agent just now). Each entry is\n" +
			"ok, missing, extra or wrong; the last line counts the differences.",
		Args: cli.ExactArgs(1, "NETWORK"),
	}
	node := cmd.Flags().String("node", "", "the node whose kernel to read (default: the manager answering)")
	format, checkFormat := cli.AddFormatFlag(cmd, cli.FormatPretty, cli.FormatJSON)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(); err != nil {
			return err
		}
		return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
			resp, err := c.InspectOverlay(ctx, &api.InspectOverlayRequest{Network: args[0], Node: *node})
			if err != nil {
				return fmt.Errorf("inspect the overlay of %s: %w", args[0], err)
			}
			v := compareOverlay(resp)
			if *format == cli.FormatJSON {
				return cli.PrintJSONValue(a.stdout, v)
			}
			return printOverlayPretty(a.stdout, v)
		})
	}
	return cmd
}

// printOverlayPretty prints one network's overlay on a node for a human.
func printOverlayPretty(w io.Writer, v overlayView) error {
	var f cli.Fields
	f.Add("Network", fmt.Sprintf("%s (%s)", v.Network, v.NetworkID))
	f.Add("VNI", cli.FormatVNI(v.VNI))
	f.Add("Subnets", cli.OrDash(strings.Join(v.Subnets, ", ")))
	f.Add("Node", fmt.Sprintf("%s (%s)", cli.OrDash(v.Node), v.NodeID))
	f.Add("Local VTEP", cli.OrDash(v.VTEP))
	switch {
	case !v.Exists && !v.DeviceWant:
		f.Add("Device", v.Device+": none (no task of the network on this node)")
	case !v.Exists:
		f.Add("Device", v.Device+": missing")
	default:
		state := "down"
		if v.Up {
			state = "up"
		}
		f.Add("Device", fmt.Sprintf("%s: %s, MTU %d, local %s, master %s", v.Device, state, v.MTU, cli.OrDash(v.Local), cli.OrDash(v.Master)))
	}
	for _, p := range v.Problems {
		f.Add("  Problem", p)
	}
	f.Add("Peers", cli.OrDash(strings.Join(v.Peers, " ")))
	if err := f.Write(w); err != nil {
		return err
	}
	for _, sec := range []struct {
		title, key, value string
		entries           []overlayEntry
	}{
		{"\nFDB (MAC → VTEP)", "MAC", "VTEP", v.FDB},
		{"\nNeighbours (IP → MAC)", "IP", "MAC", v.Neighbours},
		{"\nBridge FDB on the VXLAN port (MAC → kind)", "MAC", "KIND", v.BridgeFDB},
	} {
		if _, err := fmt.Fprintln(w, sec.title); err != nil {
			return err
		}
		rows := make([][]string, 0, len(sec.entries))
		for _, e := range sec.entries {
			status := e.Status
			if e.Status != statusOK {
				status = "* " + status // marked
				if e.Detail != "" {
					status += " (" + e.Detail + ")"
				}
			}
			rows = append(rows, []string{e.Key, cli.OrDash(e.Desired), cli.OrDash(e.Programmed), status})
		}
		if err := cli.PrintTable(w, []string{sec.key, "DESIRED " + sec.value, "PROGRAMMED " + sec.value, "STATUS"}, rows); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\n%d differences\n", v.Differences())
	return err
}
