package testbed_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/shoal/shoal/internal/testbed"
)

// Example builds a bed of two nodes, checks that node 1 reaches node 2, runs a command in node
// 2, and removes the bed. It needs root, so it is compiled, not run.
func Example() {
	const scheme = "demo-"
	if err := testbed.Check(); err != nil {
		log.Fatal(err)
	}
	if _, err := testbed.Sweep(scheme); err != nil {
		log.Print(err) // a leftover that will not go is no reason not to build a new bed
	}
	subnet, err := testbed.PickSubnet(1)
	if err != nil {
		log.Fatal(err)
	}
	defer testbed.ReleaseSubnet(subnet)
	b, err := testbed.New(fmt.Sprintf("%s%d-%d", scheme, os.Getpid(), 1), subnet)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := b.Remove(); err != nil {
			log.Print(err)
		}
	}()
	for _, n := range []int{1, 2} {
		if err := b.AddNode(n); err != nil {
			log.Print(err)
			return
		}
	}
	if err := testbed.Reach(b.NodeNSPath(1), b.NodeAddr(2), time.Second); err != nil {
		log.Print(err)
		return
	}
	out, err := testbed.RunIn(context.Background(), b.NodeNSPath(2), "ip", "-br", "addr", "show", testbed.NodeLink)
	if err != nil {
		log.Print(err)
		return
	}
	fmt.Print(out)
}
