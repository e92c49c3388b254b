package raft

// This file owns what applying means, on the Ready loop: a committed
// proposal goes to the state machine and its result to the waiting
// proposer; a committed conf change goes to raft, the member list and the
// transport; a received snapshot replaces the state machine and the member
// list; and every SnapshotInterval applied entries the node takes its own
// snapshot and compacts the log.

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// applyEntries applies committed entries in log order.
func (n *Node) applyEntries(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	for _, e := range ents {
		if e.GetIndex() <= n.applied {
			continue // already in the state (a snapshot covered it)
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			n.applyProposal(e)
		case raftpb.EntryConfChange:
			if err := n.applyConfChange(e); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %d: unsupported entry type %s", e.GetIndex(), e.GetType())
		}
		n.applied = e.GetIndex()
	}
	n.appliedWatch.set(n.applied)
	return nil
}

// applyProposal applies a normal entry. Empty entries (appended by each new
// leader) carry nothing. An entry that is not a RaftProposal was not written
// by this package; it is skipped, not fatal, so one bad entry cannot stop
// every manager. A proposal whose leader term is not the entry's term was
// made by a leader whose term ended before the entry was appended: every
// member skips it alike, since the entry's term is part of the log.
func (n *Node) applyProposal(e *raftpb.Entry) {
	if len(e.GetData()) == 0 {
		return
	}
	batch := &api.RaftProposalBatch{}
	if err := proto.Unmarshal(e.GetData(), batch); err != nil {
		n.log.Error("skipping a log entry that is not a proposal batch", "index", e.GetIndex(), "err", err)
		return
	}
	for _, p := range batch.GetProposals() {
		if t := p.GetLeaderTerm(); t != 0 && t != e.GetTerm() {
			n.log.Info("skipping a proposal of an earlier leader term", "index", e.GetIndex(), "proposed_in", t, "appended_in", e.GetTerm())
			n.waits.trigger(p.GetId(), applyResult{err: ErrLeadershipLost})
			continue
		}
		res := n.sm.Apply(e.GetIndex(), p.GetPayload())
		n.waits.trigger(p.GetId(), applyResult{val: res})
	}
}

// applyConfChange applies a committed membership change to raft, the member
// list and the transport, persists the member list, and answers its
// proposer.
func (n *Node) applyConfChange(e *raftpb.Entry) error {
	cc := &raftpb.ConfChange{}
	if err := proto.Unmarshal(e.GetData(), cc); err != nil {
		return fmt.Errorf("entry %d: unmarshal conf change: %w", e.GetIndex(), err)
	}
	n.confState = n.rn.ApplyConfChange(cc)
	id := cc.GetNodeId()
	self := n.raftID.Load()
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode:
		m := &api.RaftMember{}
		if err := proto.Unmarshal(cc.GetContext(), m); err != nil {
			return fmt.Errorf("entry %d: unmarshal member of conf change: %w", e.GetIndex(), err)
		}
		if m.GetRaftId() != id {
			return fmt.Errorf("entry %d: conf change adds raft ID %x with a member record for %x", e.GetIndex(), id, m.GetRaftId())
		}
		if n.members.add(m) && id != self {
			n.transport.addPeer(id, m.GetAddr())
		}
		n.log.Info("raft member added", "raft_id", hexID(id), "member_node_id", m.GetNodeId(), "addr", m.GetAddr(), "index", e.GetIndex())
	case raftpb.ConfChangeRemoveNode:
		n.members.remove(id)
		n.transport.removePeer(id)
		if id == self {
			n.removedSelf = true
		}
		n.log.Info("raft member removed", "raft_id", hexID(id), "index", e.GetIndex())
	default:
		return fmt.Errorf("entry %d: unsupported conf change type %s", e.GetIndex(), cc.GetType())
	}
	if err := n.disk.saveMembers(n.members.data()); err != nil {
		return err
	}
	n.onConfState()
	n.waits.trigger(cc.GetId(), applyResult{})
	return nil
}

// applySnapshot replaces the state machine and the member list with a
// snapshot received from the leader (already durable).
func (n *Node) applySnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	data := &api.RaftSnapshotData{}
	if err := proto.Unmarshal(snap.GetData(), data); err != nil {
		return fmt.Errorf("unmarshal snapshot data at index %d: %w", md.GetIndex(), err)
	}
	if err := n.sm.Restore(md.GetIndex(), data.GetState()); err != nil {
		return fmt.Errorf("restore snapshot at index %d: %w", md.GetIndex(), err)
	}
	n.members.replace(data)
	if err := n.disk.saveMembers(n.members.data()); err != nil {
		return err
	}
	n.transport.setPeers(n.members.list())
	n.confState = proto.CloneOf(md.GetConfState())
	n.applied, n.snapIndex = md.GetIndex(), md.GetIndex()
	n.appliedWatch.set(n.applied)
	if n.members.isRemoved(n.raftID.Load()) {
		n.removedSelf = true
	}
	n.onConfState()
	n.log.Info("restored raft snapshot", "index", md.GetIndex(), "term", md.GetTerm(), "members", len(data.GetMembers()))
	return nil
}

// maybeSnapshot takes a snapshot once SnapshotInterval entries were applied
// since the last one, and compacts the log, keeping
// LogEntriesForSlowFollowers entries behind it.
func (n *Node) maybeSnapshot() error {
	if n.snapshotting || n.applied-n.snapIndex < n.cfg.SnapshotInterval {
		return nil
	}
	t := snapshotTaken{index: n.applied, confState: proto.CloneOf(n.confState), data: n.members.data()}
	lazy, ok := n.sm.(LazySnapshotter)
	if !ok {
		t.state, t.err = n.sm.Snapshot()
		return n.installSnapshot(t)
	}
	// Copy on the loop, encode off it; installSnapshot finishes the job
	// on the loop when the encoding arrives on snapc.
	encode := lazy.SnapshotLater()
	n.snapshotting = true
	go func() {
		t.state, t.err = encode()
		select {
		case n.snapc <- t:
		case <-n.done:
		}
	}()
	return nil
}

// snapshotTaken is a state machine snapshot taken at index, with the
// membership of that moment.
type snapshotTaken struct {
	index     uint64
	confState *raftpb.ConfState
	data      *api.RaftSnapshotData
	state     []byte
	err       error
}

// installSnapshot makes an encoded snapshot the node's latest, on disk and
// in memory storage, and compacts the log behind it. A snapshot overtaken
// meanwhile by a newer one (received from the leader) is dropped.
func (n *Node) installSnapshot(t snapshotTaken) error {
	if t.err != nil {
		return fmt.Errorf("state machine snapshot at index %d: %w", t.index, t.err)
	}
	t.data.State = t.state
	raw, err := proto.Marshal(t.data)
	if err != nil {
		return fmt.Errorf("marshal snapshot data: %w", err)
	}
	snap, err := n.mem.CreateSnapshot(t.index, t.confState, raw)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create snapshot at index %d: %w", t.index, err)
	}
	var compactIndex uint64
	if t.index > n.cfg.LogEntriesForSlowFollowers {
		compactIndex = t.index - n.cfg.LogEntriesForSlowFollowers
	}
	if err := n.disk.saveSnapshot(snap, compactIndex); err != nil {
		return err
	}
	if compactIndex > 0 {
		if err := n.mem.Compact(compactIndex); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("compact log through index %d: %w", compactIndex, err)
		}
	}
	n.snapIndex = max(n.snapIndex, t.index)
	n.log.Debug("took raft snapshot", "index", t.index, "compacted_through", compactIndex, "bytes", len(raw))
	return nil
}
