// Package scheduler places tasks on nodes. It runs on the leader only.
//
// It takes every task that is PENDING and desired RUNNING. A task with no
// node (a replicated service's) gets the node that passes every filter and
// spreads the service best; a task with a node already set (a global
// service's) is only checked against that node. Either the task is written
// back ASSIGNED with its node, or it stays PENDING with a status message
// saying why no node fits ("no suitable node (1 node not available for new
// tasks; insufficient resources on 2 nodes)"), written only when it changes.
//
// Filters run in a fixed order (pipeline.go): node ready and active,
// scheduling constraints, platform, resource reservations, max replicas per
// node, host-mode published ports. Among the nodes that pass, placement
// preferences ("spread: node.labels.zone", nested in order) share tasks out
// evenly over the attribute's values, then the node with the fewest tasks of
// the service wins, then the one with the fewest tasks overall, then the
// lowest node ID.
//
// A task counts against a node (its reservations, its host ports, its
// service's tally) while it is on the node and observed ASSIGNED to
// RUNNING, whatever its desired state: a task told to stop holds its room
// until its agent reports it ended, and that report is what lets a task
// waiting for the room be placed.
//
// Plan is the whole placement decision as a pure function, for benchmarks
// and simulations; Scheduler.Run makes the same decisions on a view it keeps
// from store events. Its caller's duties:
//
//  1. Create it with New and call Run on the leader only, in one goroutine;
//     Run returns nil when its context ends (leadership lost), and an error
//     only when it could not catch up with the log (call it again).
//  2. Nothing else: Run first waits for a raft read barrier, so it has
//     applied everything committed before it started, then reads the whole
//     state, and reads it again when its watch closes or a raft snapshot
//     replaces the store, so a new leader resumes where the old one stopped.
//
// ParseConstraints and ValidatePlacement are what the Control API uses to
// refuse a service spec the scheduler could never satisfy.
//
// The package imports api, orchestrator/store and orchestrator/reconcile.
package scheduler
