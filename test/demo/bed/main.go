// Command bed builds and removes the demo's multi-node test bed (internal/testbed) from a shell
// script: nodes as network namespaces on an underlay bridge.
//
//	bed up NAME NODES   creates the bed and prints "N ADDRESS" for each node
//	bed down NAME       deletes every namespace of the bed (NAME-*)
//
// Node n's namespace is /run/netns/NAME-n<n>; the script runs shoald there with
// nsenter --net=/run/netns/NAME-n<n> (never ip netns exec: the node must keep the host's mounts).
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/shoal/shoal/internal/testbed"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bed:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 3 && args[0] == "up":
		nodes, err := strconv.Atoi(args[2])
		if err != nil || nodes < 1 || nodes > 254 {
			return fmt.Errorf("NODES: %q is not a node count (1 to 254)", args[2])
		}
		return up(args[1], nodes)
	case len(args) == 2 && args[0] == "down":
		return down(args[1])
	}
	return fmt.Errorf("usage: bed up NAME NODES | bed down NAME")
}

func up(name string, nodes int) error {
	if err := testbed.Check(); err != nil {
		return err
	}
	subnet, err := testbed.PickSubnet(1)
	if err != nil {
		return err
	}
	b, err := testbed.New(name, subnet)
	if err != nil {
		return err
	}
	for n := 1; n <= nodes; n++ {
		if err := b.AddNode(n); err != nil {
			return fmt.Errorf("%w (bed down %s removes what was made)", err, name)
		}
		fmt.Printf("%d %s\n", n, b.NodeAddr(n))
	}
	return nil
}

func down(name string) error {
	names, err := testbed.ListNetns()
	if err != nil {
		return err
	}
	var errs []string
	for _, ns := range names {
		if strings.HasPrefix(ns, name+"-") {
			if err := testbed.DeleteNetns(ns); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
