package main

// This file owns `netctl check`: every READY node's service mesh and overlay read just now and
// compared with what the cluster wants of it (mesh_diff.go), one line per difference, a summary
// per node, and an exit status that says whether the cluster is converged.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

// Results of a node's check.
const (
	checkClean   = "clean"
	checkDiffers = "differs"
	checkSkipped = "skipped"
	checkNotRead = "not read"
)

// checkParallel is how many nodes are asked at once: each answer waits for a node's agent to
// read its kernel, and one slow node should not hold up the rest.
const checkParallel = 4

// nodeCheck is one node's outcome.
type nodeCheck struct {
	Node        string           `json:"node"`
	NodeID      string           `json:"node_id"`
	Result      string           `json:"result"`
	Reason      string           `json:"reason,omitempty"` // why skipped or not read
	Differences []meshDifference `json:"differences"`
}

func newCheckCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Compare every node's service mesh and overlay with what the cluster wants",
		Long: "Compare every READY node's service mesh and overlay, read from the node just\n" +
			"now, with what the leader's views want of it: the VIPs and published ports its\n" +
			"load balancer holds, the names its DNS server answers on each network whose\n" +
			"bridge is on the node (and its listener there), and each network's VXLAN\n" +
			"device, FDB and neighbour entries. Each difference prints on its own line\n" +
			"after the node's name, then a summary line per node. DOWN nodes are skipped;\n" +
			"a node in another state, or whose agent does not answer, is not read.\n\n" +
			"--node checks one node (a hostname, ID or unique ID prefix); it is not read\n" +
			"unless it is READY. --timeout bounds each node's answer; up to 4 nodes are\n" +
			"asked at once. The exit status is 1 when any difference is found or any node\n" +
			"could not be read.",
		Args: cli.ExactArgs(0, ""),
	}
	node := cmd.Flags().String("node", "", "check only this node")
	format, checkFormat := cli.AddFormatFlag(cmd, cli.FormatPretty, cli.FormatJSON)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(); err != nil {
			return err
		}
		return a.conn.WithClient(func(c api.ControlClient) error {
			nodes, err := a.nodesToCheck(cmd.Context(), c, *node)
			if err != nil {
				return err
			}
			results := a.checkNodes(cmd.Context(), c, nodes, *node != "")
			if *format == cli.FormatJSON {
				err = cli.PrintJSONValue(a.stdout, results)
			} else {
				err = printChecks(a.stdout, results)
			}
			if err != nil {
				return err
			}
			return checkSummary(results)
		})
	}
	return cmd
}

// nodesToCheck is the node named, or every node sorted by hostname.
func (a *app) nodesToCheck(parent context.Context, c api.ControlClient, ref string) ([]*api.Node, error) {
	ctx, cancel := a.conn.CallContext(parent)
	defer cancel()
	if ref != "" {
		resp, err := c.GetNode(ctx, &api.GetNodeRequest{NodeId: ref})
		if err != nil {
			return nil, fmt.Errorf("get node %s: %w", ref, err)
		}
		return []*api.Node{resp.GetNode()}, nil
	}
	resp, err := c.ListNodes(ctx, &api.ListNodesRequest{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	nodes := resp.GetNodes()
	slices.SortFunc(nodes, func(x, y *api.Node) int {
		return cmp.Or(cmp.Compare(x.GetDescription().GetHostname(), y.GetDescription().GetHostname()), cmp.Compare(x.GetId(), y.GetId()))
	})
	return nodes, nil
}

// checkNodes checks nodes, checkParallel at a time, each within --timeout. named says the
// operator asked for these nodes: one that is DOWN is then not read rather than skipped.
func (a *app) checkNodes(parent context.Context, c api.ControlClient, nodes []*api.Node, named bool) []nodeCheck {
	results := make([]nodeCheck, len(nodes))
	slots := make(chan struct{}, checkParallel)
	var wg sync.WaitGroup
	for i, n := range nodes {
		r := &results[i]
		*r = nodeCheck{Node: cmp.Or(n.GetDescription().GetHostname(), cli.ShortID(n.GetId())), NodeID: n.GetId(), Differences: []meshDifference{}}
		state := n.GetStatus().GetState()
		switch {
		case state == api.NodeState_NODE_STATE_DOWN && !named:
			r.Result, r.Reason = checkSkipped, "down"
			continue
		case state != api.NodeState_NODE_STATE_READY:
			r.Result, r.Reason = checkNotRead, "the node is "+nodeStateName(state)
			continue
		}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			ctx, cancel := a.conn.CallContext(parent)
			defer cancel()
			resp, err := c.InspectMesh(ctx, &api.InspectMeshRequest{Node: n.GetId(), Overlay: true})
			if err != nil {
				r.Result, r.Reason = checkNotRead, err.Error()
				return
			}
			r.Differences = diffMesh(resp)
			r.Result = checkClean
			if len(r.Differences) > 0 {
				r.Result = checkDiffers
			}
		})
	}
	wg.Wait()
	return results
}

// nodeStateName is a node state as people say it: "down", "disconnected".
func nodeStateName(s api.NodeState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "NODE_STATE_"))
}

// printChecks prints each difference and a summary line per node.
func printChecks(w io.Writer, results []nodeCheck) error {
	var b strings.Builder
	for _, r := range results {
		for _, d := range r.Differences {
			fmt.Fprintf(&b, "%s: %s\n", r.Node, d)
		}
		switch r.Result {
		case checkDiffers:
			fmt.Fprintf(&b, "%s: %s\n", r.Node, plural(len(r.Differences), "difference"))
		case checkClean:
			fmt.Fprintf(&b, "%s: clean\n", r.Node)
		default:
			fmt.Fprintf(&b, "%s: %s: %s\n", r.Node, r.Result, r.Reason)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// checkSummary is the command's error: how many differences on how many nodes, and how many
// nodes could not be read; nil when every node read is clean.
func checkSummary(results []nodeCheck) error {
	var diffs, differing, unread int
	for _, r := range results {
		switch r.Result {
		case checkDiffers:
			diffs += len(r.Differences)
			differing++
		case checkNotRead:
			unread++
		}
	}
	var parts []string
	if diffs > 0 {
		parts = append(parts, plural(diffs, "difference")+" on "+plural(differing, "node"))
	}
	if unread > 0 {
		parts = append(parts, plural(unread, "node")+" not read")
	}
	if len(parts) == 0 {
		return nil
	}
	return errors.New(strings.Join(parts, ", "))
}

// plural is "1 node", "2 nodes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
