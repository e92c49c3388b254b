// Package overlay joins a shoal network's bridges across nodes: on each node, one VXLAN device
// per network, enslaved to the network's local bridge, with static forwarding only. The kernel
// never learns a remote address and no multicast group is used: every remote endpoint gets an FDB
// entry (its MAC → its node's VTEP) and a neighbour entry (its IP → its MAC) on the device, the
// device answers ARP requests from that neighbour table itself (proxy), and broadcasts are
// replicated to the network's other nodes through one all-zeros FDB entry per peer.
//
// The package takes plain values and imports nothing of shoal; it talks to the kernel through
// github.com/vishvananda/netlink, in the network namespace of the calling thread.
//
// # Contract
//
// The caller (the node agent) has these duties, in order:
//
//  1. Build one Manager per node with New, giving it the node's underlay address (LocalVTEP),
//     and call it from inside the node's network namespace: a process that lives in that
//     namespace, or a thread locked to it for the length of each call.
//  2. Program a network's whole view with Sync: every endpoint on any node (those on this node
//     get no entries) and the other nodes' VTEPs that take part without an endpoint (Peers;
//     a remote endpoint's VTEP always takes part). Sync diffs against the kernel, so repeating
//     it is safe and a periodic Sync repairs hand edits. Sync returns ErrNoBridge until shoal's
//     CNI plugin has made the network's bridge (the first local task); call it again after
//     that. Call Sync for a new network, for a view that changed as a whole (Peers, VNI, MTU),
//     and periodically.
//  3. Program a change of a few endpoints with Update: Set those added, moved (a new VTEP) or
//     changed, list the IPs of those withdrawn (node down, task gone) in Removed. Update costs
//     what the change costs, not what the network does: it works from what the last Sync
//     applied. When it returns ErrNotSynced (no successful Sync yet, or a Sync or Update of the
//     network failed), call Sync with the whole view instead. A later Sync's Desired includes
//     the changes given to Update: a Sync with an older view undoes them.
//  4. When a network no longer exists, call Remove; Devices lists what is left on the node,
//     for removing the devices of networks the agent no longer knows.
//
// Inspect reports how the kernel differs from a Desired without changing anything; it compares
// with the same rules Sync applies, so a Report that is Clean means Sync would change nothing.
//
// # Forwarding on the bridge
//
// Learning is off on the VXLAN device and on its bridge port: the Manager programs both tables,
// the device's FDB (MAC → VTEP) and, for the same MACs, a static entry in the bridge's forwarding
// table on the device's port. Without the bridge entry, the bridge would flood every frame to a
// remote task to all its ports: every local task would receive a copy (and, with hairpin on, the
// sender too), which costs each such frame two or three deliveries and shows one task's unicast
// to its neighbours. A move between remote nodes changes the FDB entry alone. When a task moves
// here, shoal-bridge puts its MAC on its own port as it attaches it, and the Update that makes the
// endpoint local deletes the entry from the device's port if it is still there; until that
// Update, a Sync with the older view puts it back on the device's port. Static entries are not
// sticky: a frame a local task sends with a remote task's MAC as its source moves that MAC's
// entry to the local task's port (as learning did before), until the next Sync.
package overlay
