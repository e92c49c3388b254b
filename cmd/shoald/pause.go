package main

// This file owns `shoald pause [NETNS]`: the process of a task's sandbox container
// (agent/exec/docker/pause). The Docker executor builds its pause image from this binary
// (static), so no registry is needed.

import (
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/agent/exec/docker/pause"
)

func init() {
	// The pause process joins a netns with setns(2), which moves only the calling thread: it must
	// run on the main thread. Init functions run there, and locking it makes main run there too.
	if len(os.Args) > 1 && os.Args[1] == "pause" {
		runtime.LockOSThread()
	}
}

func newPauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "pause [NETNS]",
		Short:  "Join the network namespace at NETNS and hold it until stopped (the sandbox container's process)",
		Hidden: true,
		Args:   cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var path string
			if len(args) == 1 {
				path = args[0]
			}
			return pause.Run(path)
		},
	}
}
