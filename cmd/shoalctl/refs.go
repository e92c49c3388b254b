package main

// This file owns what the node and service commands share about their
// NODE... and SERVICE... arguments: a step run for each argument that goes
// on past failures (forEachRef, getEach), which failures are worth a retry,
// and `inspect`, which is the same command for both kinds but for how a
// summary prints.

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
	"github.com/shoal/shoal/internal/ctlconn"
)

// forEachRef runs fn for every NODE or SERVICE argument, going on after a
// failure, and returns all failures joined. It stops early if the manager
// cannot be reached: every other call would fail the same way.
func forEachRef(refs []string, fn func(ref string) error) error {
	var errs []error
	for _, ref := range refs {
		err := fn(ref)
		if isUnreachable(err) {
			return err
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// getEach gets what every argument names, as forEachRef runs a step: it
// returns what it got, in the arguments' order, and the failures joined.
func getEach[T any](refs []string, get func(ref string) (T, error)) ([]T, error) {
	var got []T
	errs := forEachRef(refs, func(ref string) error {
		v, err := get(ref)
		if err == nil {
			got = append(got, v)
		}
		return err
	})
	return got, errs
}

func isUnreachable(err error) bool { return ctlconn.IsUnreachable(err) }

// isVersionConflict says err is an optimistic-concurrency failure, worth one
// retry after re-reading. The manager answers those with Aborted and keeps
// FailedPrecondition for refusals a retry cannot fix (demoting the last
// manager, removing a node that is up), so only Aborted is retried.
func isVersionConflict(err error) bool {
	return status.Code(err) == codes.Aborted
}

// prettyPrinter writes the summary of obj; it may ask the manager for more
// than obj (names of the IDs obj holds, say).
type prettyPrinter[T any] func(ctx context.Context, c api.ControlClient, w io.Writer, obj T) error

// offline is a prettyPrinter that needs nothing but the object.
func offline[T any](print func(w io.Writer, obj T) error) prettyPrinter[T] {
	return func(_ context.Context, _ api.ControlClient, w io.Writer, obj T) error { return print(w, obj) }
}

// newInspectCommand is `node inspect`, `service inspect` and `network
// inspect`: the objects the arguments name (arg, e.g. "NODE"; kinds, e.g.
// "nodes"), which get reads, as one JSON array (the objects as the manager
// has them, nothing added) or as summaries printPretty writes. An argument
// naming nothing fails the command after the others are printed.
func newInspectCommand[T proto.Message](a *app, arg, kinds string,
	get func(ctx context.Context, c api.ControlClient, ref string) (T, error),
	printPretty prettyPrinter[T]) *cobra.Command {
	var (
		format string
		pretty bool
	)
	cmd := &cobra.Command{
		Use:   "inspect " + arg + "...",
		Short: "Show " + kinds + " in detail",
		Long: "Show " + kinds + " in detail: a JSON array of the " + kinds + " by default, or a\n" +
			"human-readable summary with --pretty (or --format pretty).",
		Args: cli.RequireArgs(arg),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cli.CheckFormat("format", format, cli.FormatJSON, cli.FormatPretty); err != nil {
				return err
			}
			if pretty {
				if cmd.Flags().Changed("format") && format != cli.FormatPretty {
					return fmt.Errorf("--pretty and --format %s conflict: give one of them", format)
				}
				format = cli.FormatPretty
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				objs, errs := getEach(args, func(ref string) (T, error) { return get(ctx, c, ref) })
				if isUnreachable(errs) {
					return errs
				}
				if format == cli.FormatJSON {
					if err := cli.PrintJSONArray(a.stdout, objs); err != nil {
						return err
					}
					return errs
				}
				for i, obj := range objs {
					if i > 0 {
						fmt.Fprintln(a.stdout)
					}
					if err := printPretty(ctx, c, a.stdout, obj); err != nil {
						return err
					}
				}
				return errs
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", cli.FormatJSON, "output format: json or pretty")
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print a human-readable summary (same as --format pretty)")
	return cmd
}
