package main

// This file owns the node commands: ls, inspect, promote, demote, update
// (and its shortcuts drain, activate and pause) and rm; `node ps` lives with
// the task table it shares with `service ps`, in service_tasks.go. Writes
// read the node first and send its version, retrying once when another
// change got there in between.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
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
		newNodeInspectCommand(a),
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
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat("format", format, formatTable, formatJSON); err != nil {
				return err
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				resp, err := c.ListNodes(ctx, &api.ListNodesRequest{})
				if err != nil {
					return fmt.Errorf("list nodes: %w", err)
				}
				nodes := sortNodes(resp.GetNodes())
				if format == formatJSON {
					return printJSONArray(a.stdout, nodes)
				}
				cluster, err := c.GetCluster(ctx, &api.GetClusterRequest{})
				if err != nil {
					return fmt.Errorf("get cluster: %w", err)
				}
				return printNodeTable(a.stdout, nodes, cluster.GetManagerNodeId())
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", formatTable, "output format: table or json")
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
	return printTable(w, []string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS"}, rows)
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

// availabilityValues maps --availability values to the API's enum.
var availabilityValues = map[string]api.NodeAvailability{
	"active": api.NodeAvailability_NODE_AVAILABILITY_ACTIVE,
	"pause":  api.NodeAvailability_NODE_AVAILABILITY_PAUSE,
	"drain":  api.NodeAvailability_NODE_AVAILABILITY_DRAIN,
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

func newNodeInspectCommand(a *app) *cobra.Command {
	var (
		format string
		pretty bool
	)
	cmd := &cobra.Command{
		Use:   "inspect NODE...",
		Short: "Show nodes in detail",
		Long: "Show nodes in detail: a JSON array of the nodes by default, or a\n" +
			"human-readable summary with --pretty (or --format pretty).",
		Args: requireArgs("NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat("format", format, formatJSON, formatPretty); err != nil {
				return err
			}
			if pretty {
				if cmd.Flags().Changed("format") && format != formatPretty {
					return fmt.Errorf("--pretty and --format %s conflict: give one of them", format)
				}
				format = formatPretty
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				var (
					nodes []*api.Node
					errs  []error
				)
				for _, ref := range args {
					n, err := getNode(ctx, c, ref)
					if isUnreachable(err) {
						return err
					}
					if err != nil {
						errs = append(errs, err)
						continue
					}
					nodes = append(nodes, n)
				}
				if format == formatJSON {
					if err := printJSONArray(a.stdout, nodes); err != nil {
						return err
					}
				} else {
					for i, n := range nodes {
						if i > 0 {
							fmt.Fprintln(a.stdout)
						}
						if err := printNodePretty(a.stdout, n); err != nil {
							return err
						}
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", formatJSON, "output format: json or pretty")
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print a human-readable summary (same as --format pretty)")
	return cmd
}

// printNodePretty prints one node for a human.
func printNodePretty(w io.Writer, n *api.Node) error {
	var f fieldList
	f.add("ID", n.GetId())
	f.add("Hostname", orDash(n.GetDescription().GetHostname()))
	f.add("Created at", formatTime(n.GetMeta().GetCreatedAt()))
	f.add("Updated at", formatTime(n.GetMeta().GetUpdatedAt()))
	f.add("Version", strconv.FormatUint(n.GetMeta().GetVersion(), 10))
	f.section("Spec")
	if name := n.GetSpec().GetAnnotations().GetName(); name != "" {
		f.add("  Name", name)
	}
	f.add("  Desired role", n.GetSpec().GetDesiredRole().Name())
	f.add("  Availability", availabilityName(n.GetSpec().GetAvailability()))
	f.add("  Labels", orDash(formatLabels(n.GetSpec().GetAnnotations().GetLabels())))
	f.section("Status")
	f.add("  State", nodeStateName(n.GetStatus().GetState()))
	if msg := n.GetStatus().GetMessage(); msg != "" {
		f.add("  Message", msg)
	}
	f.add("  Address", orDash(n.GetStatus().GetAddr()))
	f.add("Role", n.GetRole().Name())
	if ms := n.GetManagerStatus(); ms != nil {
		f.section("Manager status")
		f.add("  Raft ID", strconv.FormatUint(ms.GetRaftId(), 10))
		f.add("  Address", orDash(ms.GetAddr()))
		f.add("  Raft status", managerStatusName(ms))
	}
	f.section("Platform")
	f.add("  OS", orDash(n.GetDescription().GetOs()))
	f.add("  Architecture", orDash(n.GetDescription().GetArch()))
	f.add("Engine version", orDash(n.GetDescription().GetEngineVersion()))
	f.section("Certificate")
	f.add("  Role", n.GetCertificate().GetRole().Name())
	f.add("  Not after", formatTime(n.GetCertificate().GetNotAfter()))
	return f.write(w)
}

// formatLabels prints labels as "k1=v1, k2=v2", sorted by key.
func formatLabels(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ", ")
}

func newNodeRoleCommand(a *app, verb string, role api.NodeRole) *cobra.Command {
	short := "Promote nodes to managers"
	if role == api.NodeRole_NODE_ROLE_WORKER {
		short = "Demote managers to workers"
	}
	return &cobra.Command{
		Use:   verb + " NODE...",
		Short: short,
		Args:  requireArgs("NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				return forEachRef(args, func(ref string) error {
					changed, err := updateNodeSpec(ctx, c, ref, func(spec *api.NodeSpec) bool {
						if spec.GetDesiredRole() == role {
							return false
						}
						spec.DesiredRole = role
						return true
					})
					switch {
					case err != nil:
						return err
					case !changed:
						fmt.Fprintf(a.stdout, "Node %s is already a %s.\n", ref, role.Name())
					case role == api.NodeRole_NODE_ROLE_MANAGER:
						fmt.Fprintf(a.stdout, "Node %s promoted to a manager in the cluster.\n", ref)
					default:
						fmt.Fprintf(a.stdout, "Manager %s demoted in the cluster.\n", ref)
					}
					return nil
				})
			})
		},
	}
}

func newNodeUpdateCommand(a *app) *cobra.Command {
	var (
		availability      string
		labelAdd, labelRm []string
	)
	cmd := &cobra.Command{
		Use:   "update NODE",
		Short: "Change a node's availability or labels",
		Args:  exactArgs(1, "NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			edit, err := parseNodeEdit(cmd, availability, labelAdd, labelRm)
			if err != nil {
				return err
			}
			ref := args[0]
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				if _, err := updateNodeSpec(ctx, c, ref, edit.apply); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, ref)
				return nil
			})
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&availability, "availability", "", "availability of the node: active, pause or drain")
	flags.StringArrayVar(&labelAdd, "label-add", nil, "add or change a node label (key=value); repeatable")
	flags.StringArrayVar(&labelRm, "label-rm", nil, "remove a node label by key; repeatable")
	return cmd
}

// newNodeAvailabilityCommand is a shortcut for `node update --availability`
// taking several nodes.
func newNodeAvailabilityCommand(a *app, verb string, av api.NodeAvailability, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NODE...",
		Short: short,
		Long:  short + ".\nIt is `node update --availability " + strings.ToLower(availabilityName(av)) + "` for every NODE.",
		Args:  requireArgs("NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			edit := &nodeEdit{availability: &av}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				return forEachRef(args, func(ref string) error {
					if _, err := updateNodeSpec(ctx, c, ref, edit.apply); err != nil {
						return err
					}
					fmt.Fprintln(a.stdout, ref)
					return nil
				})
			})
		},
	}
}

// nodeEdit is a validated `node update`: what to change in a NodeSpec.
type nodeEdit struct {
	availability *api.NodeAvailability
	labelAdd     map[string]string
	labelRm      []string
}

// parseNodeEdit validates the flags of `node update` before anything is sent.
func parseNodeEdit(cmd *cobra.Command, availability string, labelAdd, labelRm []string) (*nodeEdit, error) {
	edit := &nodeEdit{labelAdd: map[string]string{}}
	if cmd.Flags().Changed("availability") {
		av, ok := availabilityValues[strings.ToLower(availability)]
		if !ok {
			return nil, fmt.Errorf("invalid --availability %q: must be one of active, pause, drain", availability)
		}
		edit.availability = &av
	}
	for _, kv := range labelAdd {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid --label-add %q: want key=value with a non-empty key", kv)
		}
		edit.labelAdd[k] = v
	}
	for _, k := range labelRm {
		if k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("invalid --label-rm %q: want a label key, without a value", k)
		}
		if _, ok := edit.labelAdd[k]; ok {
			return nil, fmt.Errorf("label %q is in both --label-add and --label-rm", k)
		}
		edit.labelRm = append(edit.labelRm, k)
	}
	if edit.availability == nil && len(edit.labelAdd) == 0 && len(edit.labelRm) == 0 {
		return nil, fmt.Errorf("nothing to update: give --availability, --label-add or --label-rm")
	}
	return edit, nil
}

// apply changes spec and says whether anything changed.
func (e *nodeEdit) apply(spec *api.NodeSpec) bool {
	changed := false
	if e.availability != nil && spec.GetAvailability() != *e.availability {
		spec.Availability = *e.availability
		changed = true
	}
	if len(e.labelAdd) > 0 || len(e.labelRm) > 0 {
		if spec.Annotations == nil {
			spec.Annotations = &api.Annotations{}
		}
		if spec.Annotations.Labels == nil {
			spec.Annotations.Labels = map[string]string{}
		}
		labels := spec.Annotations.Labels
		for k, v := range e.labelAdd {
			if old, ok := labels[k]; !ok || old != v {
				labels[k] = v
				changed = true
			}
		}
		for _, k := range e.labelRm {
			if _, ok := labels[k]; ok {
				delete(labels, k)
				changed = true
			}
		}
	}
	return changed
}

func newNodeRemoveCommand(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NODE...",
		Aliases: []string{"remove"},
		Short:   "Remove nodes from the cluster",
		Long: "Remove nodes from the cluster. The manager refuses to remove a node\n" +
			"that is still up unless --force is given.",
		Args: requireArgs("NODE"),
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

// forEachRef runs fn for every NODE or SERVICE argument, going on after a
// failure, and returns all failures joined. It stops early if the manager
// cannot be reached: every other call would fail the same way.
func forEachRef(refs []string, fn func(ref string) error) error {
	var errs []error
	for _, ref := range refs {
		err := fn(ref)
		if isUnreachable(err) {
			return err
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func isUnreachable(err error) bool {
	var u *unreachableError
	return errors.As(err, &u)
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

// updateNodeSpec reads node ref, lets edit change a copy of its spec and,
// if edit reports a change, writes it back with the version it read. When
// the write loses a race with another change (Aborted: the version moved)
// it re-reads and tries once more. It reports whether anything was written.
func updateNodeSpec(ctx context.Context, c api.ControlClient, ref string, edit func(*api.NodeSpec) bool) (bool, error) {
	for attempt := 1; ; attempt++ {
		node, err := getNode(ctx, c, ref)
		if err != nil {
			return false, err
		}
		spec := &api.NodeSpec{}
		if node.GetSpec() != nil {
			spec = proto.Clone(node.GetSpec()).(*api.NodeSpec)
		}
		if !edit(spec) {
			return false, nil
		}
		_, err = c.UpdateNode(ctx, &api.UpdateNodeRequest{
			NodeId:      node.GetId(),
			NodeVersion: node.GetMeta().GetVersion(),
			Spec:        spec,
		})
		if err == nil {
			return true, nil
		}
		if attempt == 1 && isVersionConflict(err) {
			continue
		}
		return false, fmt.Errorf("update node %s: %w", ref, err)
	}
}

// isVersionConflict says err is an optimistic-concurrency failure, worth one
// retry after re-reading. The manager answers those with Aborted and keeps
// FailedPrecondition for refusals a retry cannot fix (demoting the last
// manager, removing a node that is up), so only Aborted is retried.
func isVersionConflict(err error) bool {
	return status.Code(err) == codes.Aborted
}
