package main

// This file owns `ip history`: which tasks held one slot's (or one global
// service node's) address, oldest first, on which nodes, since when, and
// what became of each task. The SLOT argument, shared with `ip release`,
// is parsed here.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

// slotRef is a SLOT argument: a slot number, or for a global service a
// node by hostname, ID or unique ID prefix.
type slotRef struct {
	slot uint64
	node string
}

func parseSlotRef(s string) (slotRef, error) {
	if s == "" {
		return slotRef{}, errors.New("invalid SLOT \"\": want a slot number, or a node for a global service")
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		if n == 0 {
			return slotRef{}, errors.New("invalid SLOT \"0\": slots count from 1")
		}
		return slotRef{slot: n}, nil
	}
	if strings.HasPrefix(s, "-") {
		return slotRef{}, fmt.Errorf("invalid SLOT %q: want a slot number, or a node for a global service", s)
	}
	return slotRef{node: s}, nil
}

func (r slotRef) String() string {
	if r.node != "" {
		return "node " + r.node
	}
	return "slot " + strconv.FormatUint(r.slot, 10)
}

// matches says b is the binding r names. A node is named by ID, hostname
// (hosts maps IDs to them) or ID prefix: the node may have left the
// cluster, its binding not yet.
func (r slotRef) matches(b *api.IPBinding, hosts map[string]string) bool {
	if r.node == "" {
		return b.GetKind() == api.IPBinding_KIND_SLOT && b.GetSlot() == r.slot
	}
	id := b.GetNodeId()
	return b.GetKind() == api.IPBinding_KIND_NODE && (id == r.node || hosts[id] == r.node || strings.HasPrefix(id, r.node))
}

func newIPHistoryCommand(a *app) *cobra.Command {
	var network string
	cmd := &cobra.Command{
		Use:   "history SERVICE SLOT",
		Short: "Show which tasks held a slot's addresses",
		Long: "Show which tasks held a slot's address on each network (or one network\n" +
			"with --network), oldest first: the address, the task, the node it ran\n" +
			"on, since when, and the task's state now, or \"reaped\" once the manager\n" +
			"has deleted it. For a global service, SLOT is a node. The manager keeps\n" +
			"the last 16 holders of each binding.",
		Args: cli.ExactArgs(2, "SERVICE SLOT"),
	}
	format, checkFormat := cli.AddFormatFlag(cmd, cli.FormatTable, cli.FormatJSON)
	cmd.Flags().StringVar(&network, "network", "", "only the address on this network")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(); err != nil {
			return err
		}
		ref, err := parseSlotRef(args[1])
		if err != nil {
			return err
		}
		service := args[0]
		return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
			var dir directory
			if err := dir.lookUpNetworks(ctx, c); err != nil {
				return err
			}
			if err := dir.lookUpHosts(ctx, c); err != nil {
				return err
			}
			bindings, err := slotBindings(ctx, c, service, ref, network, dir.hosts)
			if err != nil {
				return err
			}
			tasks, err := tasksOf(ctx, c, []string{bindings[0].GetServiceId()})
			if err != nil {
				return err
			}
			entries := historyEntries(bindings, dir, tasks)
			if *format == cli.FormatJSON {
				return cli.PrintJSONValue(a.stdout, entries)
			}
			return cli.PrintTable(a.stdout, historyHeader, historyRows(entries))
		})
	}
	return cmd
}

// slotBindings are the bindings of service's slot (node), on network or
// all of its networks; an error says none is, or that a node prefix names
// several nodes.
func slotBindings(ctx context.Context, c api.ControlClient, service string, ref slotRef, network string, hosts map[string]string) ([]*api.IPBinding, error) {
	req := &api.ListBindingsRequest{ServiceIds: []string{service}}
	if network != "" {
		req.NetworkIds = []string{network}
	}
	resp, err := c.ListBindings(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list the bindings of service %s: %w", service, err)
	}
	var found []*api.IPBinding
	nodes := map[string]bool{}
	for _, b := range resp.GetBindings() {
		if ref.matches(b, hosts) {
			found = append(found, b)
			nodes[b.GetNodeId()] = true
		}
	}
	if len(found) == 0 {
		on := ""
		if network != "" {
			on = " on network " + network
		}
		return nil, fmt.Errorf("service %s has no address for %s%s", service, ref, on)
	}
	if len(nodes) > 1 {
		return nil, fmt.Errorf("%s names %d nodes with addresses of service %s: give more of the node's ID", ref, len(nodes), service)
	}
	return found, nil
}

// historyEntry is one tenure of a binding: a row of `ip history`, and its
// JSON form.
type historyEntry struct {
	NetworkID string    `json:"network_id"`
	Network   string    `json:"network"`
	Address   string    `json:"address"`
	TaskID    string    `json:"task_id"`
	NodeID    string    `json:"node_id"`
	Node      string    `json:"node"`
	Since     time.Time `json:"since"`
	// State is the task's state now, or "reaped".
	State string `json:"state"`
}

// taskReaped is the state of a task the manager no longer has.
const taskReaped = "reaped"

// historyEntries flattens the bindings' histories, binding by binding,
// oldest holder first.
func historyEntries(bindings []*api.IPBinding, dir directory, tasks map[string]*api.Task) []historyEntry {
	var entries []historyEntry
	for _, b := range bindings {
		for _, h := range b.GetHistory() {
			e := historyEntry{
				NetworkID: b.GetNetworkId(),
				Network:   dir.network(b.GetNetworkId()),
				Address:   h.GetAddress(),
				TaskID:    h.GetTaskId(),
				NodeID:    h.GetNodeId(),
				State:     taskReaped,
			}
			if e.NodeID != "" {
				e.Node = dir.host(e.NodeID)
			}
			if h.GetSince() != nil {
				e.Since = h.GetSince().AsTime().UTC()
			}
			if t, ok := tasks[h.GetTaskId()]; ok {
				e.State = cli.TaskStateName(t.GetStatus().GetState())
			}
			entries = append(entries, e)
		}
	}
	return entries
}

var historyHeader = []string{"NETWORK", "ADDRESS", "TASK", "NODE", "SINCE", "STATE"}

func historyRows(entries []historyEntry) [][]string {
	rows := make([][]string, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, []string{
			e.Network,
			cli.AddrOnly(e.Address),
			cli.ShortID(e.TaskID),
			e.Node,
			formatSince(e.Since),
			e.State,
		})
	}
	return rows
}
