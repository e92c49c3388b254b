package raft

// This file owns what the node tells about itself without entering the Ready
// loop: the Status the loop publishes after every Ready (a change of leader
// also at the start of the Ready that brings it), the applied index
// that readers wait on, and leadership-change subscriptions.

import (
	"context"
	"sync"

	"github.com/shoal/shoal/api"
)

// Status is a point-in-time view of the node's raft state. Term, LeaderID
// and IsLeader may be a Ready ahead of Applied and Commit, and of the disk:
// a lone voter publishes its new term and leadership before the Ready that
// holds them is written (what it proposes commits only after that write).
type Status struct {
	RaftID   uint64
	Term     uint64
	LeaderID uint64 // raft ID of the leader, 0 if unknown
	Applied  uint64
	Commit   uint64
	IsLeader bool
}

// statusBoard holds the latest published Status and the leadership
// subscribers. The Ready loop is its only writer.
type statusBoard struct {
	mu     sync.Mutex
	st     Status
	subs   map[int]chan bool
	nextID int
	closed bool
}

func newStatusBoard() *statusBoard {
	return &statusBoard{subs: map[int]chan bool{}}
}

func (b *statusBoard) get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

// set publishes st and tells subscribers if leadership flipped.
func (b *statusBoard) set(st Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	flipped := st.IsLeader != b.st.IsLeader
	b.st = st
	if flipped {
		for _, ch := range b.subs {
			deliverLatest(ch, st.IsLeader)
		}
	}
}

// subscribe registers a leadership subscriber. If the node leads already, the
// channel holds true at once.
func (b *statusBoard) subscribe() (<-chan bool, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan bool, 4)
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	id := b.nextID
	b.nextID++
	b.subs[id] = ch
	if b.st.IsLeader {
		ch <- true
	}
	cancel := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if c, ok := b.subs[id]; ok {
			delete(b.subs, id)
			close(c)
		}
	}
	return ch, cancel
}

// close ends the board when the node stops: subscribers of a leader get a
// final false, then every channel is closed.
func (b *statusBoard) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	wasLeader := b.st.IsLeader
	b.st.IsLeader = false
	b.st.LeaderID = 0
	for id, ch := range b.subs {
		if wasLeader {
			deliverLatest(ch, false)
		}
		close(ch)
		delete(b.subs, id)
	}
}

// deliverLatest sends v without blocking; when the subscriber is behind, the
// oldest pending values are discarded so the latest always arrives.
func deliverLatest(ch chan bool, v bool) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// indexWatch lets goroutines wait until an index (the applied index) reaches
// a value.
type indexWatch struct {
	mu  sync.Mutex
	idx uint64
	ch  chan struct{} // closed and replaced whenever idx advances
}

func newIndexWatch() *indexWatch {
	return &indexWatch{ch: make(chan struct{})}
}

func (w *indexWatch) set(i uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i <= w.idx {
		return
	}
	w.idx = i
	close(w.ch)
	w.ch = make(chan struct{})
}

// wait blocks until the index is at least i, ctx ends, or stopped closes.
func (w *indexWatch) wait(ctx context.Context, i uint64, stopped <-chan struct{}) error {
	for {
		w.mu.Lock()
		cur, ch := w.idx, w.ch
		w.mu.Unlock()
		if cur >= i {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped:
			return ErrStopped
		}
	}
}

// Status returns the node's latest published raft status.
func (n *Node) Status() Status {
	return n.board.get()
}

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool {
	return n.board.get().IsLeader
}

// Leader returns the current leader's member record, false if there is no
// known leader or its record is not known yet.
func (n *Node) Leader() (api.RaftMember, bool) {
	id := n.board.get().LeaderID
	if id == 0 {
		return api.RaftMember{}, false
	}
	m, ok := n.members.get(id)
	if !ok {
		return api.RaftMember{}, false
	}
	return api.RaftMember{RaftId: m.GetRaftId(), NodeId: m.GetNodeId(), Addr: m.GetAddr()}, true
}

// LeadershipChanges subscribes to this node's leadership: true when it
// becomes leader, false when it stops being leader. If it leads already the
// first value is true. When the subscriber falls behind, older values are
// dropped, so the last value received is always the current one. The
// channel is closed by the returned cancel func or when the node stops (a
// leader's subscribers get false first).
func (n *Node) LeadershipChanges() (<-chan bool, func()) {
	return n.board.subscribe()
}
