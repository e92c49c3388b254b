// Command netctl shows how a shoal cluster's networks are used: which
// service slot holds which sticky IP address, who held it before, how full
// each network is, what the leader's address allocator holds, and whether
// each node's overlay and service mesh (VIPs, published ports, DNS) are as
// the cluster wants them. It talks to the Control gRPC service of a manager
// over the manager's local unix socket, as shoalctl does, with the same
// --socket and --timeout flags:
//
//	netctl ip ls [--service S] [--network N]
//	netctl ip history SERVICE SLOT [--network N]
//	netctl ip release SERVICE SLOT [--network N]
//	netctl network ls | inspect NETWORK
//	netctl overlay ls | inspect NETWORK [--node NODE]
//	netctl vip ls [--node NODE]
//	netctl ingress ls [--node NODE]
//	netctl dns lookup NAME --network NETWORK [--node NODE]
//	netctl check [--node NODE]
//	netctl allocator state
//
// Listings take --format table|json, summaries --format pretty|json.
//
// It imports the project's api package, ipam (to count free addresses the
// way the allocator's pools do), internal/ctlconn, which connects it, and
// internal/cli, the root command and output it shares with shoalctl. For
// the mesh commands it derives a node's desired state with the agent's own
// pure functions: agent/dataplane (MeshState, DNSZones, IngressNetworks),
// agent/cni (a network's gateways), mesh (the load balancer's values) and
// mesh/dns (RecordsOf). It must not import the kernel backends (mesh/nft,
// mesh/ipvs, mesh/backend).
package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
	"github.com/shoal/shoal/internal/ctlconn"
)

func main() { cli.Main(run) }

// run executes one netctl invocation and returns its exit status. Errors
// are printed to stderr as "Error: <what was wrong>".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Execute(ctx, newRootCommand(stdout, stderr), args, stderr)
}

// app holds what every command shares: the output stream and the
// connection flags.
type app struct {
	stdout io.Writer
	conn   *ctlconn.Options
}

// withControl connects, runs fn with a context bounded by --timeout and
// closes the connection.
func (a *app) withControl(cmd *cobra.Command, fn func(ctx context.Context, c api.ControlClient) error) error {
	return a.conn.WithControl(cmd.Context(), fn)
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout}
	root := cli.NewRoot("netctl", "Show how a shoal cluster's networks and addresses are used",
		"netctl shows a shoal cluster's networks, sticky IP addresses, overlay and\n"+
			"service mesh through the Control API of a manager, reached over the\n"+
			"manager's local unix socket. `netctl check` compares every node's overlay\n"+
			"and mesh with what the cluster wants.",
		stdout, stderr)
	a.conn = ctlconn.AddFlags(root)
	root.AddCommand(newIPCommand(a), newNetworkCommand(a), newOverlayCommand(a),
		newVIPCommand(a), newIngressCommand(a), newDNSCommand(a), newCheckCommand(a), newAllocatorCommand(a))
	return root
}
