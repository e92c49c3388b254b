// Package cli is what the operator CLIs (shoalctl, netctl) share besides
// their connection to a manager (internal/ctlconn): the root command and
// how it runs, the checks of a command's arguments, and output — the
// --format values, tables in docker's column style, JSON of API objects,
// aligned key/value summaries and how IDs, addresses and states read.
//
// A CLI's duties, in order:
//
//  1. Build its root command with NewRoot, then add ctlconn's flags and
//     its commands to it.
//  2. Give each command its Args check (ExactArgs, RequireArgs) and, if it
//     prints, a --format flag (AddFormatFlag, or its own flag checked with
//     CheckFormat before anything is asked).
//  3. Run the root with Execute, whose result is the exit status; main is
//     Main with the function that builds and executes the root.
//
// It imports the project's api package and internal/ctlconn.
package cli
