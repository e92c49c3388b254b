package main

// This file owns the node commands that change a node's spec: update,
// promote and demote, and the shortcuts drain, activate and pause. Each
// reads the node, changes a copy of its spec and sends it with the version
// it read, retrying once when another change got there in between.

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newNodeRoleCommand(a *app, verb string, role api.NodeRole) *cobra.Command {
	short := "Promote nodes to managers"
	if role == api.NodeRole_NODE_ROLE_WORKER {
		short = "Demote managers to workers"
	}
	return &cobra.Command{
		Use:   verb + " NODE...",
		Short: short,
		Args:  cli.RequireArgs("NODE"),
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
		Args:  cli.ExactArgs(1, "NODE"),
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
		Args:  cli.RequireArgs("NODE"),
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

// availabilityValues maps --availability values to the API's enum.
var availabilityValues = map[string]api.NodeAvailability{
	"active": api.NodeAvailability_NODE_AVAILABILITY_ACTIVE,
	"pause":  api.NodeAvailability_NODE_AVAILABILITY_PAUSE,
	"drain":  api.NodeAvailability_NODE_AVAILABILITY_DRAIN,
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
