// Command pause stands in for `shoald pause` in the executor's tests: given
// the arguments "pause [NETNS]" it runs agent/exec/docker/pause as shoald
// does; otherwise it exits 2.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/shoal/shoal/agent/exec/docker/pause"
)

func init() { runtime.LockOSThread() } // main on the main thread: see package pause

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 || os.Args[1] != "pause" {
		fmt.Fprintln(os.Stderr, "usage: pause pause [NETNS]")
		os.Exit(2)
	}
	var path string
	if len(os.Args) == 3 {
		path = os.Args[2]
	}
	if err := pause.Run(path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
