package raft

// This file owns the caller-facing ways into the log and out of it:
// Propose (wrap, hand to the Ready loop, wait for the local apply) and
// ReadBarrier (raft ReadIndex, then wait for the local apply), plus the
// registry that pairs each waiting caller with the entry or read state that
// answers it.

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// waitRegistry pairs waiting callers with the result the Ready loop finds
// for their ID. IDs are random 64-bit values: entries proposed on other
// managers are applied here too, so IDs must not collide across managers.
type waitRegistry[T any] struct {
	mu sync.Mutex
	m  map[uint64]chan T
}

func newWaitRegistry[T any]() *waitRegistry[T] {
	return &waitRegistry[T]{m: map[uint64]chan T{}}
}

// register returns a fresh nonzero ID not in use and the channel its result
// arrives on.
func (w *waitRegistry[T]) register() (uint64, <-chan T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		id := rand.Uint64()
		if _, used := w.m[id]; id == 0 || used {
			continue
		}
		ch := make(chan T, 1)
		w.m[id] = ch
		return id, ch
	}
}

// trigger hands v to the waiter for id, if any, and forgets it.
func (w *waitRegistry[T]) trigger(id uint64, v T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.m[id]; ok {
		ch <- v
		delete(w.m, id)
	}
}

func (w *waitRegistry[T]) cancel(id uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, id)
}

// failAll hands v to every waiter.
func (w *waitRegistry[T]) failAll(v T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, ch := range w.m {
		ch <- v
		delete(w.m, id)
	}
}

// applyResult is what a proposer waits for: the state machine's result, or
// why the proposal failed.
type applyResult struct {
	val any
	err error
}

// proposal is a payload on its way to the Ready loop.
type proposal struct {
	id         uint64
	payload    []byte
	leaderTerm uint64 // see WithLeaderTerm; 0 if none
}

type leaderTermKey struct{}

// WithLeaderTerm marks ctx as the context of work done because this node
// leads in term: every Propose under it is applied only if its entry is
// appended in that term, and fails with ErrLeadershipLost otherwise. A
// leader's components run under it, so that a decision a deposed leader made
// on what it knew then never lands after another leader has taken over
// (raft forwards a follower's proposals to the leader; this is the fence).
func WithLeaderTerm(ctx context.Context, term uint64) context.Context {
	return context.WithValue(ctx, leaderTermKey{}, term)
}

// LeaderTerm is the term WithLeaderTerm gave ctx, or 0.
func LeaderTerm(ctx context.Context) uint64 {
	t, _ := ctx.Value(leaderTermKey{}).(uint64)
	return t
}

// Propose replicates payload and returns the state machine's Apply result
// once the entry is applied on this node. It works on followers (raft
// forwards the proposal to the leader). It returns ErrNoLeader when there is
// no leader, ErrProposalDropped when raft refused the proposal, ErrStopped
// when the node stops, ErrLeadershipLost when ctx carries a leader term
// (WithLeaderTerm) that is over, and ctx's error when ctx ends first. Only
// the ctx error is ambiguous: the entry may still be applied later. Callers
// should pass a ctx with a deadline.
func (n *Node) Propose(ctx context.Context, payload []byte) (any, error) {
	if err := n.running(); err != nil {
		return nil, err
	}
	term := LeaderTerm(ctx)
	if st := n.board.get(); term != 0 && (!st.IsLeader || st.Term != term) {
		return nil, ErrLeadershipLost // the apply-time check is the fence; this saves the trip
	}
	id, ch := n.waits.register()
	select {
	case n.propc <- proposal{id: id, payload: payload, leaderTerm: term}:
	case <-ctx.Done():
		n.waits.cancel(id)
		return nil, ctx.Err()
	case <-n.done:
		n.waits.cancel(id)
		return nil, n.stoppedErr()
	}
	select {
	case r := <-ch:
		return r.val, r.err
	case <-ctx.Done():
		n.waits.cancel(id)
		return nil, ctx.Err()
	case <-n.done:
		n.waits.cancel(id)
		return nil, n.stoppedErr()
	}
}

// readResult is what a ReadBarrier waits for: the read index, or why there
// is none.
type readResult struct {
	index uint64
	err   error
}

// ReadBarrier returns once this node has applied everything the group had
// committed when ReadBarrier was called, so a read of the local state
// machine afterwards is linearizable. It uses raft's ReadIndex, so it works
// on followers. It returns ErrNoLeader when there is no leader.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if err := n.running(); err != nil {
		return err
	}
	if n.board.get().LeaderID == 0 {
		return ErrNoLeader
	}
	id, ch := n.reads.register()
	defer n.reads.cancel(id)
	rctx := binary.BigEndian.AppendUint64(nil, id)
	// A ReadIndex request is lost when the leader changes or a message is
	// dropped; ask again every election timeout. Any answer is valid: each
	// request was made after ReadBarrier was called.
	retry := time.NewTicker(n.cfg.electionTimeout())
	defer retry.Stop()
	for {
		if err := n.do(ctx, func() { n.rn.ReadIndex(rctx) }); err != nil {
			return err
		}
		select {
		case r := <-ch:
			if r.err != nil {
				return r.err
			}
			return n.appliedWatch.wait(ctx, r.index, n.done)
		case <-retry.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return n.stoppedErr()
		}
	}
}

// do runs f on the Ready loop goroutine (which owns the raft node) and waits
// until it ran.
func (n *Node) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case n.actc <- func() { f(); close(ran) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stoppedErr()
	}
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stoppedErr()
	}
}

// stoppedErr is ErrStopped, joined with the reason the node stopped if it
// stopped on its own.
func (n *Node) stoppedErr() error {
	if err := n.Err(); err != nil {
		return errors.Join(ErrStopped, err)
	}
	return ErrStopped
}
