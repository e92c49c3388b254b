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
// It imports only the project's api package and internal/ctlconn, which
// connects it: everything it knows about the cluster it learns through the
// Control service.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/ctlconn"
)

// socketEnv overrides the default socket when --socket is not given.
const socketEnv = ctlconn.SocketEnv

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one shoalctl invocation and returns its exit status. Errors
// are printed to stderr as "Error: <what was wrong>", one line per error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	ctlconn.PrintError(stderr, err)
	return 1
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
	root := &cobra.Command{
		Use:   "shoalctl",
		Short: "Manage a shoal cluster",
		Long: "shoalctl manages a shoal cluster through the Control API of a manager,\n" +
			"reached over the manager's local unix socket.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: err, cmdPath: cmd.CommandPath()}
	})
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

// usageError is a mistake in how a command was called; it prints with a
// pointer to the command's help.
type usageError struct {
	err     error
	cmdPath string
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%v\nSee '%s --help'.", e.err, e.cmdPath)
}

func (e *usageError) Unwrap() error { return e.err }

// requireArgs checks a command got at least one positional argument, what.
func requireArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return &usageError{
				err:     fmt.Errorf("%q requires at least one %s argument", cmd.CommandPath(), what),
				cmdPath: cmd.CommandPath(),
			}
		}
		return nil
	}
}

// exactArgs checks a command got exactly n positional arguments, described
// by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		err := fmt.Errorf("%q requires exactly %d argument(s) (%s), got %d", cmd.CommandPath(), n, what, len(args))
		if n == 0 {
			err = fmt.Errorf("%q accepts no arguments, got %q", cmd.CommandPath(), args)
		}
		return &usageError{err: err, cmdPath: cmd.CommandPath()}
	}
}
