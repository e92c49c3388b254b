// Package allocator is the leader's owner of addresses: it binds every replicated slot, every
// global service's node and every service VIP to a sticky address on each network the service
// attaches to (an IPBinding record), and hands a task its slot's address before the task leaves
// NEW. It is the only writer of bindings and of the networks' pool records, so an agent's CNI DEL
// or a late report from a dead node can never free or steal an address.
//
// # State
//
// The allocator keeps one ipam.Pool per subnet and the binding of every key in memory. It derives
// both from replicated records only — the bindings, the networks' allocation records (the serial
// cursor and the addresses cooling down) and the tasks — when it starts on a new leader, after a
// snapshot restore, after its watch fell behind and after one of its own commits failed; it
// checks the records against each other as it does (a task whose address disagrees with its
// binding, two bindings with one address) and repairs or reports each inconsistency before it
// allocates anything. Nothing is kept in a leader-local file.
//
// # Rules
//
//   - A binding never changes address on a restart, a reschedule, a drain, a node failure or a
//     leader change. It changes only when the operator changes the slot's pin, and then only when
//     the slot's next task takes it.
//   - Fencing: a slot's address goes to a new task only when the task that held it last can no
//     longer be using it: it ended, or it never reached a node and never will, or its node is
//     down or gone. Until then the new task waits in NEW with the reason in its status.
//   - A binding whose slot is gone (scale-down) is held, until the service is removed or its
//     ip_hold has passed, so scaling back up returns the same addresses; one released on request
//     (netctl ip release) or of a removed service is freed once no task can use its address, and
//     the address then cools down before the pool hands it out again.
//
// It imports api, ipam, orchestrator/store and orchestrator/reconcile.
package allocator
