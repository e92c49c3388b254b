// Command badpause stands in for a pause process that cannot join its
// sandbox's netns: it says so on stderr and exits 1.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "pause: join the netns at /netns: invalid argument")
	os.Exit(1)
}
