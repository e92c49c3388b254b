package main

// This file owns the node command tree and the commands that show and
// remove nodes: ls, inspect and rm. node_update.go owns those that change a
// node's spec (update, promote, demote, drain, activate, pause); `node ps`
// lives with the task table it shares with `service ps`, in
// service_tasks.go.

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

func newNodeCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Manage the cluster's nodes",
		Long: "Manage the cluster's nodes. NODE is a node ID, a unique prefix of one,\n" +
			"or a hostname; the manager resolves it.",
	}
	cmd.AddCommand(
		newNodeListCommand(a),
		newInspectCommand(a, "NODE", "nodes", getNode, offline(printNodePretty)),
		newNodeRoleCommand(a, "promote", api.NodeRole_NODE_ROLE_MANAGER),
		newNodeRoleCommand(a, "demote", api.NodeRole_NODE_ROLE_WORKER),
		newNodeUpdateCommand(a),
		newNodeAvailabilityCommand(a, "drain", api.NodeAvailability_NODE_AVAILABILITY_DRAIN,
			"Drain nodes: their tasks move to other nodes and no new ones come"),
		newNodeAvailabilityCommand(a, "activate", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE,
			"Make nodes available for tasks again"),
		newNodeAvailabilityCommand(a, "pause", api.NodeAvailability_NODE_AVAILABILITY_PAUSE,
			"Pause nodes: their tasks keep running but no new ones come"),
		newNodePsCommand(a),
		newNodeRemoveCommand(a),
	)
	return cmd
}

func newNodeListCommand(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the cluster's nodes",
		Long: "List the cluster's nodes, sorted by hostname. The node the CLI is\n" +
			"talking to is marked with \" *\" after its ID.",
		Args: cli.ExactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.CheckFormat("format", format, cli.FormatTable, cli.FormatJSON); err != nil {
				return err
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				resp, err := c.ListNodes(ctx, &api.ListNodesRequest{})
				if err != nil {
					return fmt.Errorf("list nodes: %w", err)
				}
				nodes := sortNodes(resp.GetNodes())
				if format == cli.FormatJSON {
					return cli.PrintJSONArray(a.stdout, nodes)
				}
				cluster, err := c.GetCluster(ctx, &api.GetClusterRequest{})
				if err != nil {
					return fmt.Errorf("get cluster: %w", err)
				}
				return printNodeTable(a.stdout, nodes, cluster.GetManagerNodeId())
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", cli.FormatTable, "output format: table or json")
	return cmd
}

// sortNodes sorts nodes in place by hostname, then ID, and returns them.
func sortNodes(nodes []*api.Node) []*api.Node {
	slices.SortFunc(nodes, func(x, y *api.Node) int {
		return cmp.Or(
			cmp.Compare(x.GetDescription().GetHostname(), y.GetDescription().GetHostname()),
			cmp.Compare(x.GetId(), y.GetId()))
	})
	return nodes
}

// printNodeTable prints nodes like `docker node ls`; self, the node the CLI
// talks to, gets " *" after its ID.
func printNodeTable(w io.Writer, nodes []*api.Node, self string) error {
	rows := make([][]string, 0, len(nodes))
	for _, n := range nodes {
		id := n.GetId()
		if self != "" && id == self {
			id += " *"
		}
		rows = append(rows, []string{
			id,
			n.GetDescription().GetHostname(),
			nodeStateName(n.GetStatus().GetState()),
			availabilityName(n.GetSpec().GetAvailability()),
			managerStatusName(n.GetManagerStatus()),
		})
	}
	return cli.PrintTable(w, []string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS"}, rows)
}

func nodeStateName(s api.NodeState) string {
	switch s {
	case api.NodeState_NODE_STATE_READY:
		return "Ready"
	case api.NodeState_NODE_STATE_DOWN:
		return "Down"
	case api.NodeState_NODE_STATE_DISCONNECTED:
		return "Disconnected"
	case api.NodeState_NODE_STATE_UNKNOWN:
		return "Unknown"
	}
	return s.String()
}

func availabilityName(av api.NodeAvailability) string {
	switch av {
	case api.NodeAvailability_NODE_AVAILABILITY_ACTIVE:
		return "Active"
	case api.NodeAvailability_NODE_AVAILABILITY_PAUSE:
		return "Pause"
	case api.NodeAvailability_NODE_AVAILABILITY_DRAIN:
		return "Drain"
	}
	return av.String()
}

// managerStatusName is the MANAGER STATUS column: empty for workers (no
// manager status), else Leader, Reachable, Unreachable or Unknown.
func managerStatusName(ms *api.ManagerStatus) string {
	switch {
	case ms == nil:
		return ""
	case ms.GetLeader():
		return "Leader"
	}
	switch r := ms.GetReachability(); r {
	case api.Reachability_REACHABILITY_REACHABLE:
		return "Reachable"
	case api.Reachability_REACHABILITY_UNREACHABLE:
		return "Unreachable"
	case api.Reachability_REACHABILITY_UNKNOWN:
		return "Unknown"
	default:
		return r.String()
	}
}

// printNodePretty prints one node for a human.
func printNodePretty(w io.Writer, n *api.Node) error {
	var f cli.Fields
	f.Add("ID", n.GetId())
	f.Add("Hostname", cli.OrDash(n.GetDescription().GetHostname()))
	f.Add("Created at", formatTime(n.GetMeta().GetCreatedAt()))
	f.Add("Updated at", formatTime(n.GetMeta().GetUpdatedAt()))
	f.Add("Version", strconv.FormatUint(n.GetMeta().GetVersion(), 10))
	f.Section("Spec")
	if name := n.GetSpec().GetAnnotations().GetName(); name != "" {
		f.Add("  Name", name)
	}
	f.Add("  Desired role", n.GetSpec().GetDesiredRole().Name())
	f.Add("  Availability", availabilityName(n.GetSpec().GetAvailability()))
	f.Add("  Labels", cli.OrDash(formatLabels(n.GetSpec().GetAnnotations().GetLabels())))
	f.Section("Status")
	f.Add("  State", nodeStateName(n.GetStatus().GetState()))
	if msg := n.GetStatus().GetMessage(); msg != "" {
		f.Add("  Message", msg)
	}
	f.Add("  Address", cli.OrDash(n.GetStatus().GetAddr()))
	f.Add("Role", n.GetRole().Name())
	if ms := n.GetManagerStatus(); ms != nil {
		f.Section("Manager status")
		f.Add("  Raft ID", strconv.FormatUint(ms.GetRaftId(), 10))
		f.Add("  Address", cli.OrDash(ms.GetAddr()))
		f.Add("  Raft status", managerStatusName(ms))
	}
	f.Section("Platform")
	f.Add("  OS", cli.OrDash(n.GetDescription().GetOs()))
	f.Add("  Architecture", cli.OrDash(n.GetDescription().GetArch()))
	f.Add("Engine version", cli.OrDash(n.GetDescription().GetEngineVersion()))
	f.Section("Certificate")
	f.Add("  Role", n.GetCertificate().GetRole().Name())
	f.Add("  Not after", formatTime(n.GetCertificate().GetNotAfter()))
	return f.Write(w)
}

// formatLabels prints labels as "k1=v1, k2=v2", sorted by key.
func formatLabels(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ", ")
}

func newNodeRemoveCommand(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NODE...",
		Aliases: []string{"remove"},
		Short:   "Remove nodes from the cluster",
		Long: "Remove nodes from the cluster. The manager refuses to remove a node\n" +
			"that is still up unless --force is given.",
		Args: cli.RequireArgs("NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				return forEachRef(args, func(ref string) error {
					if _, err := c.RemoveNode(ctx, &api.RemoveNodeRequest{NodeId: ref, Force: force}); err != nil {
						return fmt.Errorf("remove node %s: %w", ref, err)
					}
					fmt.Fprintln(a.stdout, ref)
					return nil
				})
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the node even if it is still up")
	return cmd
}

func getNode(ctx context.Context, c api.ControlClient, ref string) (*api.Node, error) {
	resp, err := c.GetNode(ctx, &api.GetNodeRequest{NodeId: ref})
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", ref, err)
	}
	if resp.GetNode() == nil {
		return nil, fmt.Errorf("get node %s: the manager answered without a node", ref)
	}
	return resp.GetNode(), nil
}
