package main

// This file owns `allocator state`: what the leader's address allocator
// says of itself. Its state dump is the allocator's own canonical JSON,
// printed as it comes with --format json; the summary gives the versions,
// the last rebuild and what that rebuild found.

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newAllocatorCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "allocator",
		Short: "Show the leader's address allocator",
	}
	cmd.AddCommand(newAllocatorStateCommand(a))
	return cmd
}

func newAllocatorStateCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Show the leader's allocator: versions, last rebuild, inconsistencies",
		Long: "Show the leader's address allocator: the store version its state is at, the\n" +
			"rebuild it made from the replicated records when it became leader (at which\n" +
			"version, how long it took, whether the state changed since) and every\n" +
			"inconsistency the rebuild found and repaired or reported. --format json\n" +
			"prints the allocator's state dump as it comes. Only the leader answers.",
		Args: cli.ExactArgs(0, ""),
	}
	format, checkFormat := cli.AddFormatFlag(cmd, cli.FormatPretty, cli.FormatJSON)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(); err != nil {
			return err
		}
		return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
			st, err := c.GetAllocatorState(ctx, &api.GetAllocatorStateRequest{})
			if err != nil {
				return fmt.Errorf("get allocator state: %w", err)
			}
			if *format == cli.FormatJSON {
				return printRaw(a.stdout, st.GetStateJson())
			}
			leader := st.GetLeaderNodeId()
			if n, err := c.GetNode(ctx, &api.GetNodeRequest{NodeId: leader}); err == nil && n.GetNode().GetDescription().GetHostname() != "" {
				leader = n.GetNode().GetDescription().GetHostname() + " (" + leader + ")"
			}
			return printAllocatorState(a.stdout, st, leader)
		})
	}
	return cmd
}

// printRaw writes s as it is, ending it with a newline.
func printRaw(w io.Writer, s string) error {
	if s == "" || s[len(s)-1] != '\n' {
		s += "\n"
	}
	_, err := io.WriteString(w, s)
	return err
}

// printAllocatorState prints the allocator's summary; leader is the leader
// as it is to be shown.
func printAllocatorState(w io.Writer, st *api.GetAllocatorStateResponse, leader string) error {
	changed := "no"
	if st.GetStateJson() != st.GetRebuiltJson() {
		changed = "yes"
	}
	duration := "-"
	if d := st.GetRebuildDuration(); d != nil {
		duration = d.AsDuration().String()
	}
	var f cli.Fields
	f.Add("Leader", cli.OrDash(leader))
	f.Add("State version", strconv.FormatUint(st.GetVersion(), 10))
	f.Add("State size", fmt.Sprintf("%d bytes", len(st.GetStateJson())))
	f.Add("Rebuilt at version", strconv.FormatUint(st.GetRebuiltVersion(), 10))
	f.Add("Rebuild duration", duration)
	f.Add("Changed since rebuild", changed)
	f.Add("Inconsistencies", strconv.Itoa(len(st.GetInconsistencies())))
	for i, inc := range st.GetInconsistencies() {
		f.Add("  "+strconv.Itoa(i+1), inc)
	}
	return f.Write(w)
}
