package cli

// This file owns the root command, running it (Main, Execute), and the
// mistakes in how a command was called: usage errors, which point at the
// command's help.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/internal/ctlconn"
)

// NewRoot is a CLI's root command writing to stdout and stderr. Cobra
// prints neither errors nor usage (Execute prints errors), and a flag
// mistake is a UsageError.
func NewRoot(use, short, long string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           use,
		Short:         short,
		Long:          long,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &UsageError{Err: err, CmdPath: cmd.CommandPath()}
	})
	return root
}

// Main is a CLI's main: it calls run with the process's arguments and
// streams and a context an interrupt cancels, then exits with run's
// status.
func Main(run func(ctx context.Context, args []string, stdout, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Execute runs root with args and returns the exit status: 0, or 1 once
// the error is printed to stderr as "Error: <what was wrong>" lines
// (ctlconn.PrintError).
func Execute(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		ctlconn.PrintError(stderr, err)
		return 1
	}
	return 0
}

// UsageError is a mistake in how a command was called; it prints with a
// pointer to the command's help.
type UsageError struct {
	Err     error
	CmdPath string // "shoalctl service ls"
}

func (e *UsageError) Error() string {
	return fmt.Sprintf("%v\nSee '%s --help'.", e.Err, e.CmdPath)
}

func (e *UsageError) Unwrap() error { return e.Err }

// ExactArgs checks a command got exactly n positional arguments, described
// by what ("SERVICE SLOT").
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		err := fmt.Errorf("%q requires exactly %d argument(s) (%s), got %d", cmd.CommandPath(), n, what, len(args))
		if n == 0 {
			err = fmt.Errorf("%q accepts no arguments, got %q", cmd.CommandPath(), args)
		}
		return &UsageError{Err: err, CmdPath: cmd.CommandPath()}
	}
}

// RequireArgs checks a command got at least one positional argument, what
// ("SERVICE").
func RequireArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return &UsageError{
				Err:     fmt.Errorf("%q requires at least one %s argument", cmd.CommandPath(), what),
				CmdPath: cmd.CommandPath(),
			}
		}
		return nil
	}
}
