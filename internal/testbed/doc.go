// Package testbed builds multi-node test beds on one machine: every node is a network namespace
// with its own underlay address on a Linux bridge (the underlay switch), which sits in a
// namespace of its own. Processes are put into a node with nsenter --net only, so they keep the
// host's mount namespace: bind mounts made under a node's state folder (the Docker executor pins
// task namespaces there) are seen by the Docker engine.
//
// A bed named <scheme><pid>-<k> on the subnet 198.18.B.0/24 looks like this:
//
//	netns <scheme><pid>-<k>-ul    bridge "ulbr" (Bridge) with one port "ul-n<n>" per node
//	netns <scheme><pid>-<k>-n<n>  lo, and "ul0" (NodeLink) = 198.18.B.n/24, the peer of ul-n<n>
//
// Every link lives inside the bed's own namespaces, never in the caller's, so link names need
// no run-unique part, and deleting the namespaces deletes every link.
//
// The package knows nothing of testing: it takes names and returns errors, so the end-to-end
// tests (test/e2e puts a shoald cluster on a bed), cmd/shoal-bench (benchmarks on multi-node
// beds) and the demo share it. It imports nothing of shoal; besides the standard library it uses
// only the CNI plugins' ns helper (github.com/containernetworking/plugins/pkg/ns), and it runs
// ip(8) and nsenter(1), as root.
//
// A caller's duties, in order:
//
//  1. Check that the machine can hold a bed (root, ip, nsenter, network namespaces).
//  2. Sweep its scheme once, before its first bed: that deletes the namespaces left by runs of
//     the same scheme that were killed before they could clean up.
//  3. PickSubnet for bed k, then New(fmt.Sprintf("%s%d-%d", scheme, os.Getpid(), k), subnet):
//     Sweep recognises a bed's namespaces by exactly that name.
//  4. AddNode for each node, and run its processes with NsenterArgv(b.NodeNSPath(n), argv),
//     or RunIn; SetConnected cuts a node off the underlay and connects it again.
//  5. Remove the bed and ReleaseSubnet its subnet — also when the run fails (defer, t.Cleanup).
package testbed
