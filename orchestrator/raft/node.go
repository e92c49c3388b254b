package raft

// This file owns the node's lifecycle: NewNode opens storage, one of
// Bootstrap, Join or Restart sets up the raft state and starts the Ready
// loop (ready.go), and Stop or a fatal error or removal ends it. The loop
// itself, and what it does per Ready, lives in ready.go and apply.go.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// Node is one manager's member of the raft group. Create it with NewNode,
// start it with exactly one of Bootstrap, Join or Restart, register
// Server() with the gRPC server, and Stop it when done.
type Node struct {
	cfg  Config
	sm   StateMachine
	log  *slog.Logger
	disk *diskStorage
	mem  *raft.MemoryStorage

	members      *memberList
	transport    *transport
	board        *statusBoard
	appliedWatch *indexWatch
	waits        *waitRegistry[applyResult]
	reads        *waitRegistry[readResult]

	raftID atomic.Uint64 // set once at start
	// confSem admits one membership change at a time.
	confSem chan struct{}
	// joined is closed once this node is a voter in its own applied
	// configuration.
	joined     chan struct{}
	joinedOnce sync.Once

	// Inputs to the Ready loop.
	propc chan proposal
	// gathered holds the proposals of the current loop turn (loop only).
	gathered      []*api.RaftProposal
	gatheredBytes int
	recvc         chan *raftpb.Message
	reportc       chan peerReport
	actc          chan func()
	removedc      chan struct{}      // a peer told us we were removed
	snapc         chan snapshotTaken // encoded snapshots, from their goroutine
	snapshotting  bool               // a snapshot is being encoded (loop only)

	// Owned by the Ready loop goroutine.
	rn          *raft.RawNode
	confState   *raftpb.ConfState
	applied     uint64
	snapIndex   uint64
	pendingCC   uint64 // conf change proposed since the last Ready
	campaignNow bool   // a lone voter need not wait for an election timeout
	removedSelf bool

	lifeMu  sync.Mutex
	started bool
	stopped bool
	stopc   chan struct{}
	done    chan struct{}
	errMu   sync.Mutex
	err     error
}

// NewNode opens the node's durable state in cfg.StateDir. It does not start
// the node.
func NewNode(cfg Config, sm StateMachine) (*Node, error) {
	if sm == nil {
		return nil, errors.New("raft: state machine is nil")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	disk, err := openDiskStorage(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:          cfg,
		sm:           sm,
		log:          cfg.Logger,
		disk:         disk,
		mem:          raft.NewMemoryStorage(),
		members:      newMemberList(),
		board:        newStatusBoard(),
		appliedWatch: newIndexWatch(),
		waits:        newWaitRegistry[applyResult](),
		reads:        newWaitRegistry[readResult](),
		confSem:      make(chan struct{}, 1),
		joined:       make(chan struct{}),
		propc:        make(chan proposal, 1024),
		recvc:        make(chan *raftpb.Message, 1024),
		reportc:      make(chan peerReport, 256),
		actc:         make(chan func(), 64),
		removedc:     make(chan struct{}, 1),
		snapc:        make(chan snapshotTaken, 1),
		stopc:        make(chan struct{}),
		done:         make(chan struct{}),
	}
	n.transport = newTransport(n, cfg)
	return n, nil
}

// HasState reports whether the state dir holds a previous raft state, so
// the node should Restart rather than Bootstrap or Join.
func (n *Node) HasState() bool {
	id, err := n.disk.raftID()
	return err == nil && id != 0
}

// Bootstrap starts a brand new single-member group with this node as its
// first member, and returns once the node leads it.
func (n *Node) Bootstrap(ctx context.Context) error {
	if n.HasState() {
		return errors.New("raft bootstrap: state dir already holds raft state; use Restart")
	}
	id := randomRaftID(func(uint64) bool { return false })
	self := &api.RaftMember{RaftId: id, NodeId: n.cfg.NodeID, Addr: n.cfg.Addr}
	selfCtx, err := proto.Marshal(self)
	if err != nil {
		return fmt.Errorf("raft bootstrap: marshal member: %w", err)
	}
	cc, err := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(id), Context: selfCtx})
	if err != nil {
		return fmt.Errorf("raft bootstrap: marshal conf change: %w", err)
	}
	// The new group's log is one committed entry adding this node; the
	// first Ready applies it, and a lone voter campaigns at once.
	first := &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Term: new(uint64(1)), Index: new(uint64(1)), Data: cc}
	hs := &raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(1))}
	members := &api.RaftSnapshotData{Members: []*api.RaftMember{self}}
	if err := n.disk.saveIdentity(id, members, hs, []*raftpb.Entry{first}); err != nil {
		return fmt.Errorf("raft bootstrap: %w", err)
	}
	if err := n.startFromDisk(); err != nil {
		return fmt.Errorf("raft bootstrap: %w", err)
	}
	n.log.Info("bootstrapped raft group", "raft_id", hexID(id))
	if err := n.waitFor(ctx, n.IsLeader); err != nil {
		return fmt.Errorf("raft bootstrap: wait for leadership: %w", err)
	}
	return nil
}

// Join asks the group, through any manager at joinAddr, to add this node,
// persists the raft ID and member list it gets, and starts with an empty
// log; the leader then sends entries or a snapshot. Join returns once this
// node has applied its own admission. If ctx ends after the group admitted
// the node, the node keeps running and catching up; Stop it to give up.
func (n *Node) Join(ctx context.Context, joinAddr string) error {
	if n.HasState() {
		return errors.New("raft join: state dir already holds raft state; use Restart")
	}
	ctx, cancel := n.withStop(ctx)
	defer cancel()
	resp, err := n.requestJoin(ctx, joinAddr)
	if err != nil {
		return fmt.Errorf("raft join via %s: %w", joinAddr, err)
	}
	id := resp.GetRaftId()
	members := &api.RaftSnapshotData{Members: resp.GetMembers(), Removed: resp.GetRemoved()}
	if err := n.disk.saveIdentity(id, members, nil, nil); err != nil {
		return fmt.Errorf("raft join: %w", err)
	}
	if err := n.startFromDisk(); err != nil {
		return fmt.Errorf("raft join: %w", err)
	}
	n.log.Info("joined raft group", "raft_id", hexID(id), "via", joinAddr)
	select {
	case <-n.joined:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("raft join: admitted as %x but not caught up: %w", id, ctx.Err())
	case <-n.done:
		return fmt.Errorf("raft join: %w", n.stoppedErr())
	}
}

// requestJoin calls Raft.Join on joinAddr, retrying while the group is busy
// (no leader, another membership change) until ctx ends.
func (n *Node) requestJoin(ctx context.Context, joinAddr string) (*api.JoinRaftResponse, error) {
	conn, err := n.cfg.Dial(ctx, joinAddr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	client := api.NewRaftClient(conn)
	req := &api.JoinRaftRequest{NodeId: n.cfg.NodeID, Addr: n.cfg.Addr}
	backoff := n.cfg.TickInterval
	for {
		resp, err := client.Join(ctx, req, callOptions()...)
		if err == nil {
			return resp, nil
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.Aborted:
			n.log.Debug("join not possible yet; retrying", "err", err)
		default:
			return nil, err
		}
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, time.Second)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
	}
}

// Restart starts the node from its state dir: the snapshot is restored into
// the state machine, and raft re-applies the committed entries after it
// through Apply. It does not wait for a leader.
func (n *Node) Restart(ctx context.Context) error {
	if err := n.startFromDisk(); err != nil {
		return fmt.Errorf("raft restart: %w", err)
	}
	return nil
}

// startFromDisk loads the durable state into the state machine and the
// memory storage, and starts the node.
func (n *Node) startFromDisk() error {
	st, err := n.disk.load()
	if err != nil {
		return err
	}
	switch {
	case st.raftID == 0:
		return errors.New("state dir holds no raft state")
	case st.removed:
		return ErrMemberRemoved
	}
	snapIndex := st.snapshot.GetMetadata().GetIndex()
	if snapIndex != 0 {
		data := &api.RaftSnapshotData{}
		if err := proto.Unmarshal(st.snapshot.GetData(), data); err != nil {
			return fmt.Errorf("unmarshal snapshot data: %w", err)
		}
		if err := n.sm.Restore(snapIndex, data.GetState()); err != nil {
			return fmt.Errorf("restore snapshot at index %d: %w", snapIndex, err)
		}
		if err := n.mem.ApplySnapshot(st.snapshot); err != nil {
			return fmt.Errorf("load snapshot: %w", err)
		}
		n.confState = proto.CloneOf(st.snapshot.GetMetadata().GetConfState())
		if len(st.members.GetMembers()) == 0 {
			st.members = data
		}
	}
	// The persisted member list is as recent as the last applied conf
	// change, so at least as new as the snapshot's; replayed conf changes
	// bring it to the same place again.
	n.members.replace(st.members)
	if st.hardState != nil {
		if err := n.mem.SetHardState(st.hardState); err != nil {
			return fmt.Errorf("load hard state: %w", err)
		}
	}
	if err := n.mem.Append(st.entries); err != nil {
		return fmt.Errorf("load entries: %w", err)
	}
	n.applied, n.snapIndex = snapIndex, snapIndex
	n.appliedWatch.set(snapIndex)
	if err := n.start(st.raftID, snapIndex); err != nil {
		return err
	}
	n.log.Info("started raft node", "raft_id", hexID(st.raftID),
		"snapshot_index", snapIndex, "entries", len(st.entries), "commit", st.hardState.GetCommit())
	return nil
}

// start creates the raft node and runs the Ready loop.
func (n *Node) start(id, applied uint64) error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	switch {
	case n.stopped:
		return ErrStopped
	case n.started:
		return errors.New("node already started")
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                id,
		ElectionTick:      n.cfg.ElectionTick,
		HeartbeatTick:     n.cfg.HeartbeatTick,
		Storage:           n.mem,
		Applied:           applied,
		MaxSizePerMsg:     maxSizePerMsg,
		MaxInflightMsgs:   maxInflightMsgs,
		CheckQuorum:       true,
		PreVote:           true,
		StepDownOnRemoval: true,
		ReadOnlyOption:    raft.ReadOnlySafe,
		Logger:            newRaftLogger(n.log),
	})
	if err != nil {
		return fmt.Errorf("create raft node: %w", err)
	}
	n.rn = rn
	if n.confState == nil {
		n.confState = &raftpb.ConfState{}
	}
	n.raftID.Store(id)
	n.onConfState()
	n.board.set(Status{RaftID: id, Applied: n.applied})
	n.transport.start(id, n.members.list())
	n.started = true
	go n.run()
	return nil
}

// Stop stops the Ready loop, the transport and storage. It is idempotent and
// returns once everything stopped. It must not be called from the state
// machine (which runs on the Ready loop).
func (n *Node) Stop() {
	n.lifeMu.Lock()
	started := n.started
	if !n.stopped {
		n.stopped = true
		close(n.stopc)
	}
	n.lifeMu.Unlock()
	if started {
		<-n.done
		return
	}
	n.finish(nil)
}

// Done is closed when the node stopped: by Stop, a fatal error, or removal
// from the group.
func (n *Node) Done() <-chan struct{} {
	return n.done
}

// Err tells why the node stopped: nil after Stop, ErrMemberRemoved after
// removal, the fatal error otherwise. It is nil while the node runs.
func (n *Node) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

// finish releases everything once the loop ended (or never started) and
// closes done. It runs once.
func (n *Node) finish(cause error) {
	select {
	case <-n.done:
		return
	default:
	}
	n.transport.stop()
	n.board.close()
	if err := n.disk.close(); err != nil && cause == nil {
		cause = err
	}
	n.errMu.Lock()
	n.err = cause
	n.errMu.Unlock()
	// Waiters see done closed and report stoppedErr, which includes cause.
	close(n.done)
	n.waits.failAll(applyResult{err: n.stoppedErr()})
	n.reads.failAll(readResult{err: n.stoppedErr()})
}

// running returns nil if the node runs, or why it does not.
func (n *Node) running() error {
	n.lifeMu.Lock()
	started := n.started
	n.lifeMu.Unlock()
	if !started {
		return errors.New("raft: node not started")
	}
	select {
	case <-n.done:
		return n.stoppedErr()
	default:
		return nil
	}
}

// withStop returns ctx, also cancelled when the node is asked to stop.
func (n *Node) withStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-n.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// waitFor polls cond every tick until it holds, ctx ends or the node stops.
func (n *Node) waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(n.cfg.TickInterval)
	defer t.Stop()
	for !cond() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return n.stoppedErr()
		}
	}
	return nil
}

// onConfState reacts to a new applied configuration: it closes joined once
// this node is a voter, and makes a lone voter campaign at once (on the next
// loop turn, after raft has seen the change applied) instead of waiting for
// an election timeout. Runs on the Ready loop (or before it starts).
func (n *Node) onConfState() {
	self := n.raftID.Load()
	voters := n.confState.GetVoters()
	if !slices.Contains(voters, self) {
		return
	}
	n.joinedOnce.Do(func() { close(n.joined) })
	n.campaignNow = len(voters) == 1
}

// randomRaftID returns a random nonzero raft ID for which used is false.
func randomRaftID(used func(uint64) bool) uint64 {
	for {
		if id := rand.Uint64(); id != 0 && !used(id) {
			return id
		}
	}
}

// hexID formats a raft ID the way the raft library logs it.
func hexID(id uint64) string {
	return strconv.FormatUint(id, 16)
}
