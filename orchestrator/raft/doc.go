// Package raft replicates the manager state: it drives go.etcd.io/raft/v3
// through its Ready loop, keeps the log, hard state and snapshots durable in
// a bbolt file, carries raft messages between managers over gRPC, takes
// snapshots and compacts the log, and changes membership. The replicated
// state itself is the caller's StateMachine (the store); this package only
// hands it committed payloads in log order.
//
// # The caller's duties, in order
//
//  1. NewNode with a Config and the StateMachine. Nothing runs yet.
//  2. Register Server() on the manager's gRPC server, with receive and send
//     limits of at least 256 MiB (a snapshot travels in one message) and
//     interceptors that admit only managers. Config.Dial must produce
//     connections with the matching (mTLS) credentials.
//  3. Start exactly once: Restart if HasState, otherwise Bootstrap for a new
//     group or Join through any manager's address. Restart calls
//     StateMachine.Restore with the latest snapshot before raft re-applies
//     the committed entries after it through Apply, so the state machine
//     must be empty when handed to NewNode.
//  4. Change state only through Propose, and read it only after
//     ReadBarrier (or on the leader, knowing the read may be stale). Pass
//     contexts with deadlines: a Propose that ends by its context may still
//     be applied later.
//  5. Watch Done: the node stops on its own on a storage error or when it
//     is removed from the group (Err is then ErrMemberRemoved; its state
//     dir cannot be restarted and must be wiped before joining again).
//  6. Stop when done; it is idempotent and must not be called from
//     StateMachine methods, which run on the Ready loop.
//
// # The Ready loop
//
// One goroutine owns the raft node (a raft.RawNode). Ticks, proposals, peer
// messages and transport reports reach it over channels; it takes whatever
// is queued before handling a Ready, and the proposals it took become one
// log entry, so concurrent proposers share an entry and an fsync. Each
// Ready is handled in this order, and any error stops the node:
//
//  0. A change of leader is published to the node's callers (IsLeader,
//     LeadershipChanges) before anything is sent, so no member hears of a
//     new leader before that leader's own callers see it lead. Then a
//     leader sends its messages (appends, heartbeats, snapshots
//     promise nothing about its own disk), so followers write while it
//     writes; it counts its own copy of an entry only after step 2.
//  1. A snapshot from the leader, and
//  2. the new entries and hard state, are written in one bbolt transaction,
//     fsynced on commit. A follower or candidate sends nothing before
//     this: its votes and acknowledgements promise that state is durable.
//  3. The snapshot and entries are added to the raft.MemoryStorage that raft
//     reads the log from.
//  4. Messages (of a node that is not the leader) are queued to per-peer
//     senders, which never block the loop.
//  5. The snapshot, if any, replaces the state machine and the member list;
//     then committed entries are applied: proposals through
//     StateMachine.Apply (the result goes to the waiting Propose), conf
//     changes to raft, the member list and the transport.
//  6. Read states release waiting ReadBarrier calls once applied reaches
//     their index.
//  7. Advance; then, every SnapshotInterval applied entries, the node takes
//     a snapshot and compacts the log.
//
// # Imports
//
// Only the api package of this project, the raft library, bbolt, gRPC and
// protobuf.
package raft
