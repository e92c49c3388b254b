package main

// This file owns the network command tree and the commands that change
// networks (create, rm); network_flags.go turns create's flags into a
// spec, network_list.go lists and summarises networks, and `inspect` is
// the one refs.go builds for nodes and services too. The manager resolves
// every NETWORK argument (ID, unique ID prefix or name).

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newNetworkCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Manage the cluster's networks",
		Long: "Manage the cluster's networks. NETWORK is a network ID, a unique prefix\n" +
			"of one, or a name; the manager resolves it.",
	}
	cmd.AddCommand(
		newNetworkCreateCommand(a),
		newNetworkListCommand(a),
		newInspectCommand(a, "NETWORK", "networks", getNetwork, offline(printNetworkPretty)),
		newNetworkRemoveCommand(a),
	)
	return cmd
}

func newNetworkCreateCommand(a *app) *cobra.Command {
	var nf *networkFlags
	cmd := &cobra.Command{
		Use:   "create [flags] NETWORK",
		Short: "Create a network",
		Long: "Create a network named NETWORK and print its ID. The cluster allocates\n" +
			"its VNI. Each --gateway and --ip-range belongs to the --subnet in the\n" +
			"same position: the first --gateway to the first --subnet, and so on.\n" +
			"Extra CNI plugins are given as JSON objects with --cni-plugin-json.\n\n" +
			"Example:\n" +
			"  shoalctl network create --subnet 10.20.0.0/16 --gateway 10.20.0.1 \\\n" +
			"    --ip-range 10.20.128.0/17 --aux-address router=10.20.0.2 \\\n" +
			"    --cni-plugin-json '{\"type\":\"bandwidth\",\"egressRate\":1000000}' front",
		Args: cli.ExactArgs(1, "NETWORK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := nf.spec(args[0])
			if err != nil {
				return err
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				resp, err := c.CreateNetwork(ctx, &api.CreateNetworkRequest{Spec: spec})
				if err != nil {
					return fmt.Errorf("create network %s: %w", args[0], err)
				}
				if resp.GetNetwork() == nil {
					return fmt.Errorf("create network %s: %w", args[0], errNoNetwork)
				}
				fmt.Fprintln(a.stdout, resp.GetNetwork().GetId())
				return nil
			})
		},
	}
	nf = addNetworkFlags(cmd)
	return cmd
}

func newNetworkRemoveCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK...",
		Aliases: []string{"remove"},
		Short:   "Remove networks",
		Long: "Remove networks. The manager refuses to remove a network a service\n" +
			"still uses, and names those services.",
		Args: cli.RequireArgs("NETWORK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				return forEachRef(args, func(ref string) error {
					if _, err := c.RemoveNetwork(ctx, &api.RemoveNetworkRequest{NetworkId: ref}); err != nil {
						return fmt.Errorf("remove network %s: %w", ref, err)
					}
					fmt.Fprintln(a.stdout, ref)
					return nil
				})
			})
		},
	}
}

// errNoNetwork says the manager answered a network RPC without the network.
var errNoNetwork = errors.New("the manager answered without a network")

func getNetwork(ctx context.Context, c api.ControlClient, ref string) (*api.Network, error) {
	resp, err := c.GetNetwork(ctx, &api.GetNetworkRequest{NetworkId: ref})
	if err != nil {
		return nil, fmt.Errorf("get network %s: %w", ref, err)
	}
	if resp.GetNetwork() == nil {
		return nil, fmt.Errorf("get network %s: %w", ref, errNoNetwork)
	}
	return resp.GetNetwork(), nil
}

// networkIDs resolves network references through the manager, asking once
// per reference.
func networkIDs(ctx context.Context, c api.ControlClient) networkResolver {
	type answer struct {
		id  string
		err error
	}
	answers := map[string]answer{}
	return func(ref string) (string, error) {
		if a, ok := answers[ref]; ok {
			return a.id, a.err
		}
		n, err := getNetwork(ctx, c, ref)
		answers[ref] = answer{n.GetId(), err}
		return n.GetId(), err
	}
}
