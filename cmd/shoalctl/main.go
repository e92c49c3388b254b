// Command shoalctl is the operator CLI of a shoal cluster. It talks to the
// Control gRPC service of a manager over that manager's local unix socket
// and offers commands shaped like `docker swarm`, `docker node`,
// `docker service` and `docker network`:
//
//	shoalctl cluster info
//	shoalctl cluster join-token worker|manager [--rotate] [-q]
//	shoalctl node ls | inspect | ps | promote | demote | update | drain | activate | pause | rm
//	shoalctl service create | ls | ps | inspect | update | scale | rollback | rm
//	shoalctl network create | ls | inspect | rm
//
// Every RPC is bounded by --timeout. Commands that change a service then
// follow its tasks until the service converges (unless --detach), a wait
// bounded by their own --wait-timeout, which is unbounded by default.
//
// It imports only the project's api package, internal/ctlconn, which
// connects it, and internal/cli, the root command and output it shares
// with netctl: everything it knows about the cluster it learns through the
// Control service.
package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
	"github.com/shoal/shoal/internal/ctlconn"
)

// socketEnv overrides the default socket when --socket is not given.
const socketEnv = ctlconn.SocketEnv

func main() { cli.Main(run) }

// run executes one shoalctl invocation and returns its exit status. Errors
// are printed to stderr as "Error: <what was wrong>", one line per error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Execute(ctx, newRootCommand(stdout, stderr), args, stderr)
}

// app holds what every command shares: the output streams and the
// connection flags.
type app struct {
	stdout, stderr io.Writer
	conn           *ctlconn.Options
}

// newRootCommand builds the whole command tree writing to stdout and stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := cli.NewRoot("shoalctl", "Manage a shoal cluster",
		"shoalctl manages a shoal cluster through the Control API of a manager,\n"+
			"reached over the manager's local unix socket.",
		stdout, stderr)
	a.conn = ctlconn.AddFlags(root)

	root.AddCommand(newClusterCommand(a), newNodeCommand(a), newServiceCommand(a), newNetworkCommand(a))
	return root
}

// withControl connects to the manager, runs fn with a Control client and a
// context bounded by --timeout, and closes the connection.
func (a *app) withControl(cmd *cobra.Command, fn func(ctx context.Context, c api.ControlClient) error) error {
	return a.conn.WithControl(cmd.Context(), fn)
}

// withConnection connects to the manager, runs fn with a Control client and
// closes the connection. Unlike withControl it sets no deadline: fn bounds
// each of its RPCs with callContext, so it may wait longer than --timeout
// in all (following a service until it converges).
func (a *app) withConnection(_ *cobra.Command, fn func(c api.ControlClient) error) error {
	return a.conn.WithClient(fn)
}

// callContext bounds a step of RPCs by --timeout.
func (a *app) callContext(parent context.Context) (context.Context, context.CancelFunc) {
	return a.conn.CallContext(parent)
}
