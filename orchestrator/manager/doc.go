// Package manager assembles a manager node: the raft node and the replicated
// store it drives, the remote gRPC API (mTLS, authorized per method), the
// local Control socket, and the components that run only on the leader.
//
// A caller's duties, in order: build a Config (security config loaded or
// freshly issued; Bootstrap set only when initialising a new cluster, JoinAddr
// only when joining one), call New, then Run until its context ends. Run
// returns raft.ErrMemberRemoved when the node was removed from the raft group
// (it was demoted); the caller then carries on as a worker.
//
// Leader-only components are listed once, in leaderComponents, and started
// and stopped together by one loop that follows raft leadership.
package manager
