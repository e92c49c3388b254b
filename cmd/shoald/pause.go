package main

// This file owns `shoald pause`: the process of a task's sandbox container, which holds the
// task's network namespace while the task's own container comes and goes. The Docker executor
// builds its pause image from this binary (static), so no registry is needed.

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func newPauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "pause",
		Short:  "Hold a sandbox's namespaces until stopped (the sandbox container's process)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			// As PID 1 in its container, it also reaps nothing: nothing else runs there.
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			<-sig
			return nil
		},
	}
}
