package raft

// This file owns the Ready loop: the one goroutine that owns the raft node.
// It takes ticks, proposals, peer messages, transport reports and actions,
// and handles each Ready in the fixed order documented in doc.go. What
// applying an entry or a snapshot means is in apply.go.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// maxBatch bounds how many queued inputs one loop turn takes before it
// handles a Ready, so one fsync covers many proposals without starving
// ticks.
const maxBatch = 4096

// maxBatchBytes bounds the payload bytes gathered into one entry.
const maxBatchBytes = 512 << 10

// run is the Ready loop. It ends on Stop, on a fatal error, or when this
// node was removed from the group, and then releases everything.
func (n *Node) run() {
	cause := n.loop()
	if cause != nil && !errors.Is(cause, ErrMemberRemoved) {
		n.log.Error("raft node stopped on a fatal error", "err", cause)
	}
	if errors.Is(cause, ErrMemberRemoved) {
		n.log.Info("removed from the raft group; stopping")
		if err := n.disk.markRemoved(); err != nil {
			cause = errors.Join(cause, err)
		}
	}
	n.finish(cause)
}

func (n *Node) loop() error {
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	// pending is a closed channel, turned on in the select while raft has
	// work ready (for example entries the leader committed in Advance) so
	// the loop does not sleep until the next input.
	pending := make(chan struct{})
	close(pending)
	for {
		var ready <-chan struct{}
		if n.campaignNow || n.rn.HasReady() {
			ready = pending
		}
		select {
		case <-n.stopc:
			return nil
		case <-n.removedc:
			return ErrMemberRemoved
		case t := <-n.snapc:
			n.snapshotting = false
			if err := n.installSnapshot(t); err != nil {
				return err
			}
		case <-ticker.C:
			n.rn.Tick()
		case p := <-n.propc:
			n.gather(p)
		case m := <-n.recvc:
			n.step(m)
		case r := <-n.reportc:
			n.report(r)
		case f := <-n.actc:
			f()
		case <-ready:
		}
		n.takeQueued()
		n.proposeGathered()
		n.maybeCampaign()
		if !n.rn.HasReady() {
			continue
		}
		if err := n.handleReady(); err != nil {
			return err
		}
		if n.removedSelf {
			return ErrMemberRemoved
		}
	}
}

// maybeCampaign makes a lone voter campaign at once rather than after an
// election timeout.
func (n *Node) maybeCampaign() {
	if !n.campaignNow {
		return
	}
	n.campaignNow = false
	if n.rn.BasicStatus().RaftState == raft.StateLeader {
		return
	}
	if err := n.rn.Campaign(); err != nil {
		n.log.Warn("campaign as the only voter", "err", err)
	}
}

// takeQueued takes what else is queued, without blocking, so that
// concurrent proposals land in one Ready.
func (n *Node) takeQueued() {
	for range maxBatch {
		select {
		case p := <-n.propc:
			n.gather(p)
		case m := <-n.recvc:
			n.step(m)
		case r := <-n.reportc:
			n.report(r)
		case f := <-n.actc:
			f()
		default:
			return
		}
	}
}

// gather queues a proposal for the entry this loop turn proposes; a full
// batch is proposed at once.
func (n *Node) gather(p proposal) {
	n.gathered = append(n.gathered, &api.RaftProposal{Id: p.id, Payload: p.payload, LeaderTerm: p.leaderTerm})
	n.gatheredBytes += len(p.payload)
	if n.gatheredBytes >= maxBatchBytes {
		n.proposeGathered()
	}
}

// proposeGathered proposes the proposals gathered this turn as one entry,
// so concurrent proposers share an entry as well as an fsync. A refusal is
// reported to every proposer of the batch at once.
func (n *Node) proposeGathered() {
	if len(n.gathered) == 0 {
		return
	}
	batch := &api.RaftProposalBatch{Proposals: n.gathered}
	n.gathered, n.gatheredBytes = nil, 0
	data, err := proto.Marshal(batch)
	if err == nil {
		err = n.rn.Propose(data)
	}
	if err == nil {
		return
	}
	if errors.Is(err, raft.ErrProposalDropped) {
		err = ErrProposalDropped
		if n.rn.BasicStatus().Lead == raft.None {
			err = ErrNoLeader
		}
	}
	for _, p := range batch.Proposals {
		n.waits.trigger(p.GetId(), applyResult{err: err})
	}
}

// step hands a peer's message to raft. Errors mean raft ignored the message
// (for example a response from a peer no longer in the configuration).
func (n *Node) step(m *raftpb.Message) {
	if err := n.rn.Step(m); err != nil {
		n.log.Debug("raft ignored a message", "type", m.GetType().String(), "from", hexID(m.GetFrom()), "err", err)
	}
}

// report tells raft what the transport learned about a peer.
func (n *Node) report(r peerReport) {
	if r.unreachable {
		n.rn.ReportUnreachable(r.id)
	}
	if r.snapshot {
		n.rn.ReportSnapshot(r.id, r.snapStatus)
	}
}

// handleReady handles one Ready in the order raft requires; any error is
// fatal for the node.
func (n *Node) handleReady() error {
	rd := n.rn.Ready()
	n.checkConfChangeAppended(rd.Entries)
	// A change of leader is published before anything is sent, so no
	// member learns from this node's messages that it leads before this
	// node's own callers do (a request forwarded to a new leader at once
	// would otherwise be refused as sent to a follower).
	if rd.SoftState != nil {
		n.publishLeadership()
	}

	// A leader sends before it persists, so followers write to their disks
	// while it writes to its own (raft thesis §10.2.1). That is safe: a
	// leader's messages (appends, heartbeats, snapshots) claim nothing
	// about its own disk, and an entry commits once a majority has it
	// durably. Everyone else sends only after persisting, because a vote
	// or an append acknowledgement promises that the state is on disk.
	leaderSent := false
	if n.rn.BasicStatus().RaftState == raft.StateLeader {
		for _, r := range n.transport.send(rd.Messages) {
			n.report(r)
		}
		leaderSent = true
	}

	// 1+2. Persist the snapshot, entries and hard state in one fsynced
	// transaction.
	if n.cfg.beforeWrite != nil {
		n.cfg.beforeWrite(n.raftID.Load())
	}
	if err := n.disk.save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return err
	}
	hasSnap := !raft.IsEmptySnap(rd.Snapshot)
	if hasSnap {
		if err := n.mem.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("apply snapshot at index %d to memory storage: %w", rd.Snapshot.GetMetadata().GetIndex(), err)
		}
	}
	// 3. Make the entries readable to raft.
	if err := n.mem.Append(rd.Entries); err != nil {
		return fmt.Errorf("append entries to memory storage: %w", err)
	}
	// 4. Send. Sends never block; what cannot be queued is reported back.
	if !leaderSent {
		for _, r := range n.transport.send(rd.Messages) {
			n.report(r)
		}
	}
	// 5. Apply: a received snapshot first, then committed entries.
	if hasSnap {
		if err := n.applySnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := n.applyEntries(rd.CommittedEntries); err != nil {
		return err
	}
	// 6. Answer reads.
	for _, rs := range rd.ReadStates {
		if len(rs.RequestCtx) == 8 {
			n.reads.trigger(binary.BigEndian.Uint64(rs.RequestCtx), readResult{index: rs.Index})
		}
	}
	// 7. Advance, then publish and compact.
	n.rn.Advance(rd)
	n.publishStatus()
	return n.maybeSnapshot()
}

// checkConfChangeAppended tells the proposer of the membership change
// proposed since the last Ready if raft did not append it (raft turns a
// conf change into an empty entry while a previous one may be unapplied);
// proposeConfChange proposes it again.
func (n *Node) checkConfChangeAppended(ents []*raftpb.Entry) {
	id := n.pendingCC
	if id == 0 {
		return
	}
	n.pendingCC = 0
	for _, e := range ents {
		if e.GetType() != raftpb.EntryConfChange {
			continue
		}
		cc := &raftpb.ConfChange{}
		if proto.Unmarshal(e.GetData(), cc) == nil && cc.GetId() == id {
			return
		}
	}
	n.waits.trigger(id, applyResult{err: errConfChangeNotTaken})
}

// publishLeadership updates who leads, and the term, on the status board;
// the rest waits for publishStatus at the end of the Ready.
func (n *Node) publishLeadership() {
	n.board.set(withLeadership(n.board.get(), n.rn.BasicStatus()))
}

// publishStatus makes the raft state visible to other goroutines.
func (n *Node) publishStatus() {
	bs := n.rn.BasicStatus()
	n.board.set(withLeadership(Status{RaftID: bs.ID, Applied: n.applied, Commit: bs.HardState.GetCommit()}, bs))
}

// withLeadership is st with the term and who leads taken from bs.
func withLeadership(st Status, bs raft.BasicStatus) Status {
	st.Term = bs.HardState.GetTerm()
	st.LeaderID = bs.Lead
	st.IsLeader = bs.RaftState == raft.StateLeader
	return st
}
