// Package store is shoal's replicated state: in-memory indexed objects that
// change only through transactions committed by raft.
//
// The store is the raft state machine (it implements Apply, Snapshot and
// Restore for orchestrator/raft) and the API everything else on a manager
// reads and writes through. A caller's duties, in order:
//
//  1. Create the store with New, giving it every Check it must enforce
//     (they judge each entry as it applies, replayed ones included, so they
//     cannot be added later), pass the raft node as its Proposer once the
//     node exists (SetProposer), and hand the store to the raft node as its
//     state machine.
//  2. Read with View (local, may lag the leader) or ViewLinearizable (a raft
//     read-index barrier first, so the read sees every write acknowledged
//     before it started).
//  3. Write with Update. The callback reads and stages changes; the staged
//     actions carry the version of every object they touch and are proposed
//     through raft as one transaction. Every manager applies it in log order
//     and the whole transaction fails with ErrVersionConflict if any object
//     moved on since it was read; Update then re-runs the callback, so the
//     callback must have no side effects outside the transaction. The
//     callback runs under the store's read lock, which holds Apply (and so
//     the raft loop) off: keep it short, and never call View or Update
//     from inside it.
//     A Check may still refuse the transaction as it applies, judging a
//     state the callback did not see (another writer's transaction landed
//     first); Update returns the check's error as it is, without a retry.
//  4. Follow changes with Watch or ViewAndWatch: one Batch per committed
//     transaction, in log order, so a reconciler can mark work dirty per
//     event and reconcile once per batch. Transactions proposed together
//     share a raft entry, so consecutive batches may carry the same Index:
//     it orders batches, it does not name one.
//
// Apply is deterministic: object versions are the raft index of the entry
// that last changed them, timestamps are chosen by the proposer, and checks
// decide from the state and the entry alone.
//
// The package imports only api.
package store
