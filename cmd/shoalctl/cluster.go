package main

// This file owns the cluster commands: cluster info and join-token (show
// and rotate), as docker swarm's join-token behaves.

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newClusterCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show the cluster and manage its join tokens",
	}
	cmd.AddCommand(newClusterInfoCommand(a), newJoinTokenCommand(a))
	return cmd
}

func newClusterInfoCommand(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show the cluster's identity, raft state and settings",
		Long: "Show the cluster's identity, raft state and settings. Join tokens and\n" +
			"the CA key are never printed, also not with --format json.",
		Args: cli.ExactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.CheckFormat("format", format, cli.FormatPretty, cli.FormatJSON); err != nil {
				return err
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				resp, err := c.GetCluster(ctx, &api.GetClusterRequest{})
				if err != nil {
					return fmt.Errorf("get cluster: %w", err)
				}
				resp = withoutSecrets(resp)
				if format == cli.FormatJSON {
					return cli.PrintJSON(a.stdout, resp)
				}
				nodes, err := c.ListNodes(ctx, &api.ListNodesRequest{})
				if err != nil {
					return fmt.Errorf("list nodes: %w", err)
				}
				return printClusterInfo(a.stdout, resp, nodes.GetNodes())
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", cli.FormatPretty, "output format: pretty or json")
	return cmd
}

// withoutSecrets returns a copy of resp without the CA key and the join
// tokens: whoever can read `cluster info` output must not be able to join
// the cluster or sign certificates with it.
func withoutSecrets(resp *api.GetClusterResponse) *api.GetClusterResponse {
	resp = proto.Clone(resp).(*api.GetClusterResponse)
	if ca := resp.GetCluster().GetRootCa(); ca != nil {
		ca.CaKeyPem = nil
		ca.JoinTokens = nil
	}
	return resp
}

func printClusterInfo(w io.Writer, resp *api.GetClusterResponse, nodes []*api.Node) error {
	cluster := resp.GetCluster()
	spec := cluster.GetSpec()
	managers := 0
	for _, n := range nodes {
		if n.GetRole() == api.NodeRole_NODE_ROLE_MANAGER {
			managers++
		}
	}

	var f cli.Fields
	f.Add("ID", cli.OrDash(cluster.GetId()))
	f.Add("Name", cli.OrDash(spec.GetAnnotations().GetName()))
	leader := "none (no raft leader)"
	if id := resp.GetLeaderId(); id != "" {
		leader = nodeWithHostname(id, nodes)
	}
	f.Add("Leader", leader)
	if id := resp.GetManagerNodeId(); id != "" {
		f.Add("This manager", nodeWithHostname(id, nodes))
	}
	f.Add("Nodes", strconv.Itoa(len(nodes)))
	f.Add("  Managers", strconv.Itoa(managers))
	f.Add("  Workers", strconv.Itoa(len(nodes)-managers))
	f.Section("Raft")
	f.Add("  Term", strconv.FormatUint(resp.GetRaftTerm(), 10))
	f.Add("  Applied index", strconv.FormatUint(resp.GetRaftAppliedIndex(), 10))
	f.Add("  Snapshot interval", strconv.FormatUint(spec.GetRaft().GetSnapshotInterval(), 10)+" entries")
	f.Section("CA")
	f.Add("  Digest", cli.OrDash(cluster.GetRootCa().GetCaCertDigest()))
	f.Add("  Node certificate expiry", formatDuration(spec.GetCaConfig().GetNodeCertExpiry()))
	f.Section("Dispatcher")
	f.Add("  Heartbeat period", formatDuration(spec.GetDispatcher().GetHeartbeatPeriod()))
	return f.Write(w)
}

// nodeWithHostname prints a node ID with the node's hostname when nodes
// has it: "abc123 (mgr-1)".
func nodeWithHostname(id string, nodes []*api.Node) string {
	for _, n := range nodes {
		if n.GetId() == id && n.GetDescription().GetHostname() != "" {
			return fmt.Sprintf("%s (%s)", id, n.GetDescription().GetHostname())
		}
	}
	return id
}

// joinRoles maps the join-token argument to the API's role.
var joinRoles = map[string]api.NodeRole{
	"worker":  api.NodeRole_NODE_ROLE_WORKER,
	"manager": api.NodeRole_NODE_ROLE_MANAGER,
}

func newJoinTokenCommand(a *app) *cobra.Command {
	var rotate, quiet bool
	cmd := &cobra.Command{
		Use:   "join-token worker|manager",
		Short: "Show or rotate the token new nodes join with",
		Long: "Show the token a new worker or manager joins the cluster with, and the\n" +
			"shoald command line to run on it. --rotate replaces the token first:\n" +
			"the old one stops working, nodes already in the cluster are not affected.",
		Args: cli.ExactArgs(1, "worker or manager"),
		RunE: func(cmd *cobra.Command, args []string) error {
			roleArg := args[0]
			role, ok := joinRoles[roleArg]
			if !ok {
				return fmt.Errorf("invalid role %q: the argument must be worker or manager", roleArg)
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				var tokens *api.JoinTokens
				if rotate {
					resp, err := c.RotateJoinToken(ctx, &api.RotateJoinTokenRequest{Role: role})
					if err != nil {
						return fmt.Errorf("rotate the %s join token: %w", roleArg, err)
					}
					tokens = resp.GetJoinTokens()
					if !quiet {
						fmt.Fprintf(a.stdout, "Successfully rotated %s join token.\n\n", roleArg)
					}
				} else {
					resp, err := c.GetCluster(ctx, &api.GetClusterRequest{})
					if err != nil {
						return fmt.Errorf("get cluster: %w", err)
					}
					tokens = resp.GetCluster().GetRootCa().GetJoinTokens()
				}
				token := tokens.GetWorker()
				if role == api.NodeRole_NODE_ROLE_MANAGER {
					token = tokens.GetManager()
				}
				if token == "" {
					return fmt.Errorf("the manager returned no %s join token", roleArg)
				}
				if quiet {
					fmt.Fprintln(a.stdout, token)
					return nil
				}
				nodes, err := c.ListNodes(ctx, &api.ListNodesRequest{})
				if err != nil {
					return fmt.Errorf("list nodes to find the join address: %w", err)
				}
				addr, err := joinAddr(nodes.GetNodes())
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "To add a %s to this cluster, run the following command:\n\n"+
					"    shoald --join-token %s --join-addr %s\n", roleArg, token, addr)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the join token with a new one first")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the token")
	return cmd
}

// joinAddr is the address new nodes should join through: the raft leader's,
// else the first reachable manager in `node ls` order.
func joinAddr(nodes []*api.Node) (string, error) {
	var reachable []string
	for _, n := range sortNodes(slices.Clone(nodes)) {
		ms := n.GetManagerStatus()
		if ms.GetAddr() == "" {
			continue
		}
		if ms.GetLeader() {
			return ms.GetAddr(), nil
		}
		if ms.GetReachability() == api.Reachability_REACHABILITY_REACHABLE {
			reachable = append(reachable, ms.GetAddr())
		}
	}
	if len(reachable) > 0 {
		return reachable[0], nil
	}
	return "", fmt.Errorf("no manager with a known address to join through (use -q to print only the token)")
}
