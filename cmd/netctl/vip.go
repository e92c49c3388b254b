package main

// This file owns `netctl vip ls`: every service VIP, its backends as the cluster wants them and
// as one node's load balancer holds them. mesh_diff.go pairs and compares; this file lays out.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

// Row states of `vip ls` and `ingress ls`.
const (
	rowOK      = "ok"
	rowDiffers = "differs"
)

// maxListed is how many backends a table cell lists before it says how many more there are.
const maxListed = 6

func newVIPCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vip",
		Short: "Show the services' virtual IPs and what a node's load balancer holds for them",
		Long: "Show the services' virtual IPs. A service in endpoint mode vip has one VIP on\n" +
			"each of its networks; every node balances connections to it, on any port,\n" +
			"over the service's RUNNING tasks on that network. The leader answers with the\n" +
			"desired backends; the node named reads its load balancer just now.",
	}
	cmd.AddCommand(newVIPListCommand(a))
	return cmd
}

// vipRow is one VIP in `vip ls`: desired, programmed on the node, or both.
type vipRow struct {
	Service   string `json:"service"`
	ServiceID string `json:"service_id"`
	Network   string `json:"network"`
	NetworkID string `json:"network_id"`
	VIP       string `json:"vip"`
	// Backends are the desired backends, nil when the VIP is not desired.
	Backends []string `json:"backends"`
	// Programmed are the backends the node's load balancer holds, nil when it lacks the VIP.
	Programmed  []string `json:"programmed"`
	State       string   `json:"state"`
	Differences []string `json:"differences,omitempty"`
}

func newVIPListCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List every service VIP with its backends, desired and programmed",
		Long: "List every service VIP, sorted by service and network: BACKENDS are the\n" +
			"addresses of the service's RUNNING tasks on the VIP's network (the count, then\n" +
			"the list), PROGRAMMED what the load balancer of --node holds (a hostname, ID\n" +
			"or unique ID prefix; default: the manager answering), \"-\" when it lacks the\n" +
			"VIP. STATE is ok or differs. Cells list at most 6 addresses; --format json\n" +
			"lists every one, and says how each VIP differs.",
		Args: cli.ExactArgs(0, ""),
	}
	addMeshListing(a, cmd, []string{"SERVICE", "NETWORK", "VIP", "BACKENDS", "PROGRAMMED", "STATE"},
		func(v meshView) (any, [][]string) {
			rows := v.vipRows()
			table := make([][]string, 0, len(rows))
			for _, r := range rows {
				table = append(table, []string{r.Service, r.Network, r.VIP, formatBackends(r.Backends), formatBackends(r.Programmed), r.State})
			}
			return rows, table
		})
	return cmd
}

// addMeshListing makes cmd a listing of what a node's load balancer holds (--node, --format):
// rows turns the node's mesh into the JSON value and the table's rows under header. A load
// balancer that could not be read is an error, after the listing.
func addMeshListing(a *app, cmd *cobra.Command, header []string, rows func(meshView) (any, [][]string)) {
	node := cmd.Flags().String("node", "", "the node whose load balancer to read (default: the manager answering)")
	format, checkFormat := cli.AddFormatFlag(cmd, cli.FormatTable, cli.FormatJSON)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(); err != nil {
			return err
		}
		return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
			v, err := inspectMesh(ctx, c, &api.InspectMeshRequest{Node: *node})
			if err != nil {
				return err
			}
			value, table := rows(v)
			if *format == cli.FormatJSON {
				err = cli.PrintJSONValue(a.stdout, value)
			} else {
				err = cli.PrintTable(a.stdout, header, table)
			}
			if err != nil {
				return err
			}
			return v.loadBalancerError()
		})
	}
}

// inspectMesh asks for a node's mesh and derives its desired state.
func inspectMesh(ctx context.Context, c api.ControlClient, req *api.InspectMeshRequest) (meshView, error) {
	resp, err := c.InspectMesh(ctx, req)
	if err != nil {
		node := req.GetNode()
		if node == "" {
			return meshView{}, fmt.Errorf("inspect the mesh of the manager's node: %w", err)
		}
		return meshView{}, fmt.Errorf("inspect the mesh of node %s: %w", node, err)
	}
	return newMeshView(resp), nil
}

// loadBalancerError says why the node's load balancer could not be read, nil if it was.
func (v meshView) loadBalancerError() error {
	k := v.resp.GetKernel()
	switch {
	case k == nil:
		return fmt.Errorf("node %s reported no mesh state: PROGRAMMED is unknown", v.nodeName())
	case k.GetError() != "":
		return fmt.Errorf("node %s: %s: PROGRAMMED is unknown or incomplete", v.nodeName(), k.GetError())
	}
	return nil
}

// vipRows pairs the desired VIPs with the node's, sorted by service, network and VIP.
func (v meshView) vipRows() []vipRow {
	pairs := pairVIPs(v.want.VIPs, v.resp.GetKernel().GetVips())
	rows := make([]vipRow, 0, len(pairs))
	for _, p := range pairs {
		r := vipRow{VIP: p.Addr, State: rowOK}
		if p.Want != nil {
			r.ServiceID, r.NetworkID = p.Want.Service, p.Want.Network
			r.Backends = wantVIPBackends(p.Want)
		} else {
			r.ServiceID, r.NetworkID = p.Have.GetServiceId(), p.Have.GetNetworkId()
		}
		if p.Have != nil {
			r.Programmed = haveVIPBackends(p.Have)
		}
		r.Service, r.Network = v.serviceName(r.ServiceID), v.networkName(r.NetworkID)
		for _, d := range v.vipDifferences(p) {
			r.State = rowDiffers
			r.Differences = append(r.Differences, d.Detail)
		}
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(x, y vipRow) int {
		return cmp.Or(cmp.Compare(x.Service, y.Service), cmp.Compare(x.Network, y.Network), compareAddrs(x.VIP, y.VIP))
	})
	return rows
}

// formatBackends writes a backend list as "2: 10.0.0.5,10.0.0.6", at most maxListed of them;
// "-" for nil (not there at all), "0" for none.
func formatBackends(list []string) string {
	switch {
	case list == nil:
		return "-"
	case len(list) == 0:
		return "0"
	case len(list) > maxListed:
		return fmt.Sprintf("%d: %s,+%d more", len(list), strings.Join(list[:maxListed], ","), len(list)-maxListed)
	}
	return strconv.Itoa(len(list)) + ": " + strings.Join(list, ",")
}
