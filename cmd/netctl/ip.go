package main

// This file owns the ip command tree and `ip ls`: one row per binding, in
// the order the manager returns them, with the names of what its IDs name.
// ip_history.go lists who held one binding, ip_release.go frees one.

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newIPCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ip",
		Short: "Show and release the sticky addresses of services",
		Long: "Show and release the sticky addresses of services. Each replicated service's\n" +
			"slot keeps an address per network (a global service's task one per node),\n" +
			"and each service in vip mode has a virtual IP per network: these are its\n" +
			"bindings. SERVICE is a service name, ID or unique ID prefix.",
	}
	cmd.AddCommand(newIPListCommand(a), newIPHistoryCommand(a), newIPReleaseCommand(a))
	return cmd
}

func newIPListCommand(a *app) *cobra.Command {
	var services, networks []string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the bindings of services to addresses",
		Long: "List the bindings of services to addresses. SLOT/NODE is the slot, the node\n" +
			"of a global service's task, or \"vip\". STATE is held (the slot was scaled\n" +
			"away; the address waits for it), pinned (--ip or --ip-range chose it) or\n" +
			"bound, with \"releasing\" once `netctl ip release` asked for it to be freed.\n" +
			"TASK is the task that holds the address, or held it last, and NODE where\n" +
			"that task runs or ran.",
		Args: cli.ExactArgs(0, ""),
	}
	format, checkFormat := cli.AddFormatFlag(cmd, cli.FormatTable, cli.FormatJSON)
	cmd.Flags().StringArrayVar(&services, "service", nil, "only the bindings of this service; repeatable")
	cmd.Flags().StringArrayVar(&networks, "network", nil, "only the bindings on this network; repeatable")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(); err != nil {
			return err
		}
		return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
			resp, err := c.ListBindings(ctx, &api.ListBindingsRequest{ServiceIds: services, NetworkIds: networks})
			if err != nil {
				return fmt.Errorf("list bindings: %w", err)
			}
			bindings := resp.GetBindings()
			if *format == cli.FormatJSON {
				return cli.PrintJSONArray(a.stdout, bindings)
			}
			var dir directory
			if err := dir.lookUpNetworks(ctx, c); err != nil {
				return err
			}
			if err := dir.lookUpHosts(ctx, c); err != nil {
				return err
			}
			tasks, err := tasksOf(ctx, c, servicesWithoutHolderNode(bindings))
			if err != nil {
				return err
			}
			return cli.PrintTable(a.stdout, bindingHeader, bindingRows(bindings, dir, tasks))
		})
	}
	return cmd
}

var bindingHeader = []string{"SERVICE", "SLOT/NODE", "NETWORK", "IP", "STATE", "TASK", "NODE"}

// bindingRows are the rows of `ip ls`, in the bindings' order. tasks are
// the holders whose node the bindings' history does not say.
func bindingRows(bindings []*api.IPBinding, dir directory, tasks map[string]*api.Task) [][]string {
	rows := make([][]string, 0, len(bindings))
	for _, b := range bindings {
		node := ""
		if id := holderNode(b, tasks); id != "" {
			node = dir.host(id)
		}
		rows = append(rows, []string{
			bindingService(b),
			slotOrNode(b, dir),
			dir.network(b.GetNetworkId()),
			cli.AddrOnly(b.GetAddress()),
			cli.BindingState(b),
			cli.ShortID(b.GetTaskId()),
			node,
		})
	}
	return rows
}

func bindingService(b *api.IPBinding) string {
	if b.GetServiceName() != "" {
		return b.GetServiceName()
	}
	return cli.ShortID(b.GetServiceId())
}

// slotOrNode is what the binding is for: a slot, a node (by hostname) or
// the service's VIP.
func slotOrNode(b *api.IPBinding, dir directory) string {
	switch b.GetKind() {
	case api.IPBinding_KIND_VIP:
		return "vip"
	case api.IPBinding_KIND_NODE:
		return dir.host(b.GetNodeId())
	}
	return strconv.FormatUint(b.GetSlot(), 10)
}

// holderNode is the node of the task that holds the binding, or held it
// last: from the binding's last history entry when that is the task's and
// says, else from the task itself (tasks); empty when neither knows.
func holderNode(b *api.IPBinding, tasks map[string]*api.Task) string {
	if b.GetTaskId() == "" {
		return ""
	}
	if h := b.GetHistory(); len(h) > 0 {
		if last := h[len(h)-1]; last.GetTaskId() == b.GetTaskId() && last.GetNodeId() != "" {
			return last.GetNodeId()
		}
	}
	return tasks[b.GetTaskId()].GetNodeId()
}

// servicesWithoutHolderNode are the services of the bindings whose
// holder's node only the task can tell.
func servicesWithoutHolderNode(bindings []*api.IPBinding) []string {
	var ids []string
	for _, b := range bindings {
		if b.GetTaskId() != "" && holderNode(b, nil) == "" && !slices.Contains(ids, b.GetServiceId()) {
			ids = append(ids, b.GetServiceId())
		}
	}
	return ids
}
