package main

// This file owns printing shared by shoalctl's commands beyond what
// internal/cli prints for both CLIs: times, durations and listings.

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/internal/cli"
)

// formatTime prints a timestamp in UTC, or "-" when it is unset.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// formatDuration prints a duration the Go way, adding days when it is a
// whole number of them: "2160h0m0s (90 days)". Unset prints "-".
func formatDuration(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	dur := d.AsDuration()
	const day = 24 * time.Hour
	if dur >= day && dur%day == 0 {
		return fmt.Sprintf("%v (%d days)", dur, dur/day)
	}
	return dur.String()
}

// named is an object listed by name: a service or a network.
type named interface {
	proto.Message
	GetId() string
}

// printListing prints what an `ls` lists, sorted by name then ID: the IDs
// with -q, a JSON array with --format json, else the table.
func printListing[T named](w io.Writer, items []T, name func(T) string, quiet bool, format string, table func([]T) error) error {
	slices.SortFunc(items, func(x, y T) int {
		return cmp.Or(cmp.Compare(name(x), name(y)), cmp.Compare(x.GetId(), y.GetId()))
	})
	switch {
	case quiet:
		for _, it := range items {
			fmt.Fprintln(w, shortID(it.GetId(), false))
		}
		return nil
	case format == cli.FormatJSON:
		return cli.PrintJSONArray(w, items)
	}
	return table(items)
}
