package raft

// This file holds what a caller hands to NewNode — the StateMachine it plugs
// in and the Config — together with the defaults and the package's error
// values. Nothing here runs.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
)

// StateMachine is the replicated state the raft log drives. The node calls
// it from a single goroutine; calls never overlap.
type StateMachine interface {
	// Apply applies one committed proposal payload at raft index. It is
	// called from one goroutine, in log order, on every manager. Its result
	// is handed to the local proposer, if any. Proposals made concurrently
	// share an entry, so several payloads in a row may carry the same index.
	Apply(index uint64, payload []byte) any
	// Snapshot returns the state as of the last applied index.
	Snapshot() ([]byte, error)
	// Restore replaces the whole state with a snapshot's state taken at index.
	Restore(index uint64, state []byte) error
}

// LazySnapshotter is an optional extension of StateMachine for states too
// large to encode on the Ready loop: SnapshotLater takes a consistent copy
// of the state as of the last applied index, cheaply, on the loop, and
// returns a function that encodes that copy, which the node runs on another
// goroutine so heartbeats keep flowing meanwhile.
type LazySnapshotter interface {
	SnapshotLater() func() ([]byte, error)
}

// Config configures a Node. Zero durations and counts take the defaults
// noted on each field.
type Config struct {
	// NodeID is the node's cluster ID (its certificate CN); it is stored in
	// RaftMember.node_id.
	NodeID string
	// Addr is the advertised remote API address other managers dial.
	Addr string
	// StateDir is where raft data lives; it is created with mode 0700.
	StateDir string
	// TickInterval is the length of one raft tick; default 100ms.
	TickInterval time.Duration
	// ElectionTick is the election timeout in ticks; default 10.
	ElectionTick int
	// HeartbeatTick is the heartbeat interval in ticks; default 1.
	HeartbeatTick int
	// SnapshotInterval is the number of applied entries between snapshots;
	// default 10000.
	SnapshotInterval uint64
	// LogEntriesForSlowFollowers is how many entries are kept behind a
	// snapshot so a follower that lags a little gets entries rather than a
	// whole snapshot. 0 means keep none when SnapshotInterval is set; when
	// both are 0 the defaults apply (10000 and 500).
	LogEntriesForSlowFollowers uint64
	// Dial opens a client connection to another manager (mTLS in
	// production). The node keeps one connection per peer and closes it
	// when the peer leaves or the node stops.
	Dial func(ctx context.Context, addr string) (*grpc.ClientConn, error)
	// Logger receives the node's and the raft library's logs; default
	// slog.Default().
	Logger *slog.Logger

	// pingInterval and reachableWindow tune the reachability probes; tests
	// shorten them. Defaults: 1s and 3s.
	pingInterval    time.Duration
	reachableWindow time.Duration
	// beforeWrite, if set, runs with the node's raft ID before each
	// Ready's write (also one with nothing to write); tests use it to make
	// some members slow between sending and publishing.
	beforeWrite func(raftID uint64)
}

const (
	defaultTickInterval               = 100 * time.Millisecond
	defaultElectionTick               = 10
	defaultHeartbeatTick              = 1
	defaultSnapshotInterval           = 10000
	defaultLogEntriesForSlowFollowers = 500
	defaultPingInterval               = time.Second

	// maxMsgSize bounds one gRPC message between managers. A snapshot is
	// sent whole in one message, so this is also the largest snapshot.
	maxMsgSize = 256 << 20
	// maxSizePerMsg bounds the entries raft packs into one MsgApp.
	maxSizePerMsg = 1 << 20
	// maxInflightMsgs bounds the MsgApps in flight to one follower.
	maxInflightMsgs = 256
)

// withDefaults returns cfg with zero fields set to their defaults, or an
// error naming the first missing required field.
func (cfg Config) withDefaults() (Config, error) {
	switch {
	case cfg.NodeID == "":
		return cfg, errors.New("raft config: NodeID is empty")
	case cfg.Addr == "":
		return cfg, errors.New("raft config: Addr is empty")
	case cfg.StateDir == "":
		return cfg, errors.New("raft config: StateDir is empty")
	case cfg.Dial == nil:
		return cfg, errors.New("raft config: Dial is nil")
	case cfg.TickInterval < 0:
		return cfg, fmt.Errorf("raft config: TickInterval %v is negative", cfg.TickInterval)
	case cfg.ElectionTick < 0 || cfg.HeartbeatTick < 0:
		return cfg, fmt.Errorf("raft config: ElectionTick %d and HeartbeatTick %d must not be negative", cfg.ElectionTick, cfg.HeartbeatTick)
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = defaultTickInterval
	}
	if cfg.ElectionTick == 0 {
		cfg.ElectionTick = defaultElectionTick
	}
	if cfg.HeartbeatTick == 0 {
		cfg.HeartbeatTick = defaultHeartbeatTick
	}
	if cfg.HeartbeatTick >= cfg.ElectionTick {
		return cfg, fmt.Errorf("raft config: HeartbeatTick %d must be less than ElectionTick %d", cfg.HeartbeatTick, cfg.ElectionTick)
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = defaultSnapshotInterval
		if cfg.LogEntriesForSlowFollowers == 0 {
			cfg.LogEntriesForSlowFollowers = defaultLogEntriesForSlowFollowers
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.pingInterval == 0 {
		cfg.pingInterval = defaultPingInterval
	}
	if cfg.reachableWindow == 0 {
		cfg.reachableWindow = 3 * cfg.pingInterval
	}
	return cfg, nil
}

// electionTimeout is the nominal election timeout as a duration.
func (cfg Config) electionTimeout() time.Duration {
	return time.Duration(cfg.ElectionTick) * cfg.TickInterval
}

var (
	// ErrNoLeader is returned when the group has no known leader, so a
	// proposal or read cannot be served now. Retrying later may succeed.
	ErrNoLeader = errors.New("raft: no leader")
	// ErrStopped is returned by calls made on, or waiting on, a node that
	// has stopped.
	ErrStopped = errors.New("raft: node stopped")
	// ErrMemberRemoved is the node's Err after it was removed from the
	// group; a removed node's state cannot be restarted.
	ErrMemberRemoved = errors.New("raft: member removed from the group")
	// ErrCannotRemove wraps the reason a member removal was refused.
	ErrCannotRemove = errors.New("raft: cannot remove member")
	// ErrConfChangeInProgress is returned when a membership change is asked
	// for while another one has not been applied yet.
	ErrConfChangeInProgress = errors.New("raft: a membership change is already in progress")
	// ErrProposalDropped is returned when raft refused a proposal outright
	// (for example during a leadership transfer); it was not appended and
	// may be retried.
	ErrProposalDropped = errors.New("raft: proposal dropped")
	// ErrNotLeader is returned by calls only the leader can serve.
	ErrNotLeader = errors.New("raft: this node is not the leader")
	// ErrLeadershipLost is returned for a proposal made with a leader term
	// (WithLeaderTerm) once that term is over: it was not applied, on any
	// member.
	ErrLeadershipLost = errors.New("raft: the proposer's leadership term is over")
)
