// Command pause stands in for `shoald pause` in the executor's tests:
// given the argument "pause" it blocks until SIGTERM or SIGINT and exits
// 0; otherwise it exits 2.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] != "pause" {
		fmt.Fprintln(os.Stderr, "usage: pause pause")
		os.Exit(2)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
