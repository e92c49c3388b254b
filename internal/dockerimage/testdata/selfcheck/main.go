// Command selfcheck is the payload of dockerimage's tests: run as an
// image's entrypoint, it exits 0 when its own file is a root-owned 0755
// file and its arguments are "check" and the variant it was built as, 3
// otherwise. Building it with -ldflags "-X main.variant=b" gives other
// bytes, as a new release of a binary would.
package main

import (
	"fmt"
	"os"
	"syscall"
)

var variant = "a"

func main() {
	st, err := os.Stat(os.Args[0])
	if err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	switch {
	case st.Mode().Perm() != 0o755:
		fmt.Println("mode", st.Mode())
		os.Exit(3)
	case sys == nil || sys.Uid != 0 || sys.Gid != 0:
		fmt.Println("not owned by root")
		os.Exit(3)
	case len(os.Args) != 3 || os.Args[1] != "check" || os.Args[2] != variant:
		fmt.Println("arguments", os.Args[1:], "variant", variant)
		os.Exit(3)
	}
	fmt.Println("ok")
}
