package main

// This file owns `ip release`: asking the allocator to free a slot's
// address on purpose, and saying which bindings were marked.

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newIPReleaseCommand(a *app) *cobra.Command {
	var network string
	cmd := &cobra.Command{
		Use:   "release SERVICE SLOT",
		Short: "Free a slot's address on purpose",
		Long: "Ask the allocator to free the address of a service's slot (for a global\n" +
			"service, SLOT is a node), on every network or on --network only. The\n" +
			"binding is marked \"releasing\" at once; the allocator frees the address\n" +
			"once no task can still be using it, and it cools down before it is handed\n" +
			"out again. This is how a slot held after a scale-down gives its address\n" +
			"back before the service's --ip-hold runs out.",
		Args: cli.ExactArgs(2, "SERVICE SLOT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseSlotRef(args[1])
			if err != nil {
				return err
			}
			service := args[0]
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				// The manager resolves the node, also one that left the cluster.
				resp, err := c.ReleaseBinding(ctx, &api.ReleaseBindingRequest{
					ServiceId: service, Slot: ref.slot, NodeId: ref.node, NetworkId: network,
				})
				if err != nil {
					return fmt.Errorf("release %s of service %s: %w", ref, service, err)
				}
				if len(resp.GetBindings()) == 0 {
					return fmt.Errorf("release %s of service %s: the manager marked no binding", ref, service)
				}
				var dir directory
				if err := dir.lookUpNetworks(ctx, c); err != nil {
					return err
				}
				if ref.node != "" {
					if err := dir.lookUpHosts(ctx, c); err != nil {
						return err
					}
				}
				return printReleased(a.stdout, resp.GetBindings(), dir)
			})
		},
	}
	cmd.Flags().StringVar(&network, "network", "", "release the address on this network only")
	return cmd
}

// printReleased says which bindings were marked, one line each:
// "web slot 3 on front: 10.20.0.13 marked for release".
func printReleased(w io.Writer, bindings []*api.IPBinding, dir directory) error {
	for _, b := range bindings {
		var what string
		switch b.GetKind() {
		case api.IPBinding_KIND_SLOT:
			what = "slot " + slotOrNode(b, dir)
		case api.IPBinding_KIND_NODE:
			what = "node " + slotOrNode(b, dir)
		default:
			what = slotOrNode(b, dir)
		}
		if _, err := fmt.Fprintf(w, "%s %s on %s: %s marked for release\n",
			bindingService(b), what, dir.network(b.GetNetworkId()), cli.AddrOnly(b.GetAddress())); err != nil {
			return err
		}
	}
	return nil
}
