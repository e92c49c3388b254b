// Command netctl shows how a shoal cluster's networks are used: which
// service slot holds which sticky IP address, who held it before, how full
// each network is, and what the leader's address allocator holds. It talks
// to the Control gRPC service of a manager over the manager's local unix
// socket, as shoalctl does, with the same --socket and --timeout flags:
//
//	netctl ip ls [--service S] [--network N]
//	netctl ip history SERVICE SLOT [--network N]
//	netctl ip release SERVICE SLOT [--network N]
//	netctl network ls | inspect NETWORK
//	netctl allocator state
//
// Listings take --format table|json, summaries --format pretty|json.
//
// It imports the project's api package, ipam (to count free addresses the
// way the allocator's pools do) and internal/ctlconn, which connects it.
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one netctl invocation and returns its exit status. Errors
// are printed to stderr as "Error: <what was wrong>".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		ctlconn.PrintError(stderr, err)
		return 1
	}
	return 0
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
	root := &cobra.Command{
		Use:   "netctl",
		Short: "Show how a shoal cluster's networks and addresses are used",
		Long: "netctl shows a shoal cluster's networks and sticky IP addresses through the\n" +
			"Control API of a manager, reached over the manager's local unix socket.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: err, cmdPath: cmd.CommandPath()}
	})
	a.conn = ctlconn.AddFlags(root)
	root.AddCommand(newIPCommand(a), newNetworkCommand(a), newAllocatorCommand(a))
	return root
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
