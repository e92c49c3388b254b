package reconcile

// This file owns Loop, the one driver of every watch-driven reconciler
// (replicated, global, taskreaper): catch up with the log, read everything
// and watch, let store batches only mark work dirty, and reconcile what is
// dirty once per run of batches. The reconcilers supply what differs: what
// to mark, and how to reconcile one ID.

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/shoal/shoal/orchestrator/store"
)

// maxCoalescedBatches bounds how many batches one round of reconciling
// waits behind.
const maxCoalescedBatches = 256

// Dirty is the set of IDs (services, for every reconciler so far) a Loop
// reconciles in its next round.
type Dirty map[string]struct{}

// Mark adds id to the set.
func (d Dirty) Mark(id string) { d[id] = struct{}{} }

// Source is the store as a Loop reads it; *store.MemoryStore is one.
type Source interface {
	ViewLinearizable(ctx context.Context, fn func(store.ReadTx)) error
	ViewAndWatch(ctx context.Context, fn func(store.ReadTx)) <-chan store.Batch
	View(fn func(store.ReadTx))
}

// Loop drives a reconciler on the leader. Run, in order:
//
//  1. catches up with the log (a linearizable read), so it starts from
//     everything committed before it;
//  2. reads the whole store and starts watching it with no gap between the
//     two, calling MarkAll with full set;
//  3. then, until ctx ends: reconciles the dirty IDs, one Reconcile call
//     each in ID order, and clears them; waits for a batch or the tick; on
//     batches, takes every batch already queued too (so a burst coalesces
//     into one round) and passes them to Note; on a batch that says the
//     store was restored from a snapshot, or a watch closed because it fell
//     behind, reads everything again (MarkAll, full); on the tick, calls
//     MarkAll without full, to catch what no event announces (a failed
//     commit, an expired hold).
//
// The callbacks run on Run's goroutine, one at a time, so the Dirty they
// are handed needs no lock.
type Loop struct {
	// Name prefixes Run's errors ("replicated", "taskreaper").
	Name  string
	Store Source
	// Log reports IDs whose Reconcile failed; nil means slog.Default().
	Log *slog.Logger
	// Tick is the period of the MarkAll without full; it must be positive.
	Tick time.Duration

	// MarkAll marks dirty, from tx, every ID the reconciler may have work
	// for. full is set when Run starts, after a snapshot restore and after
	// the watch fell behind: it must then also find work no event will
	// announce again (tasks of a service deleted meanwhile). Without full
	// (the tick), it may skip such costly walks.
	MarkAll func(tx store.ReadTx, dirty Dirty, full bool)
	// Note marks dirty what batches, committed in this order, concern. It
	// never sees a Restored batch (Run calls MarkAll instead). It may read
	// the store with View; it must not write.
	Note func(batches []store.Batch, dirty Dirty)
	// Reconcile does the work for one ID. An error is logged, and the ID
	// is tried again at its next event or at the next tick, whichever
	// comes first (the tick's MarkAll may no longer see it: a deleted
	// service's tasks still need their desired REMOVE).
	Reconcile func(ctx context.Context, id string) error
	// AfterRound, when set (tests), is called after each round that
	// reconciled at least one ID.
	AfterRound func()
}

// Run reconciles until ctx ends, then returns nil. It fails only when it
// cannot catch up with the log.
func (l *Loop) Run(ctx context.Context) error {
	if err := l.Store.ViewLinearizable(ctx, func(store.ReadTx) {}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%s: catch up with the log: %w", l.Name, err)
	}
	dirty, failed := make(Dirty), make(Dirty)
	readAll := func(tx store.ReadTx) { l.MarkAll(tx, dirty, true) }
	watch := l.Store.ViewAndWatch(ctx, readAll)
	ticker := time.NewTicker(l.Tick)
	defer ticker.Stop()
	for {
		l.reconcileDirty(ctx, dirty, failed)
		select {
		case <-ctx.Done():
			return nil
		case b, ok := <-watch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				// Fallen behind: the store closed the watch.
				watch = l.Store.ViewAndWatch(ctx, readAll)
				continue
			}
			l.note(append([]store.Batch{b}, queued(watch)...), dirty)
		case <-ticker.C:
			l.Store.View(func(tx store.ReadTx) { l.MarkAll(tx, dirty, false) })
			for id := range failed {
				dirty[id] = struct{}{}
			}
			clear(failed)
		}
	}
}

// queued returns the batches already waiting on watch.
func queued(watch <-chan store.Batch) []store.Batch {
	var out []store.Batch
	for len(out) < maxCoalescedBatches {
		select {
		case b, ok := <-watch:
			if !ok {
				return out // Run sees the closed channel next
			}
			out = append(out, b)
		default:
			return out
		}
	}
	return out
}

// note hands batches to Note, except restored ones: one of those means
// reading everything again.
func (l *Loop) note(batches []store.Batch, dirty Dirty) {
	restored := slices.ContainsFunc(batches, func(b store.Batch) bool { return b.Restored })
	if restored {
		l.Store.View(func(tx store.ReadTx) { l.MarkAll(tx, dirty, true) })
		batches = slices.DeleteFunc(batches, func(b store.Batch) bool { return b.Restored })
	}
	if len(batches) > 0 {
		l.Note(batches, dirty)
	}
}

// reconcileDirty reconciles the dirty IDs and forgets them, noting in
// failed those that failed.
func (l *Loop) reconcileDirty(ctx context.Context, dirty, failed Dirty) {
	if len(dirty) == 0 {
		return
	}
	ids := make([]string, 0, len(dirty))
	for id := range dirty {
		ids = append(ids, id)
	}
	clear(dirty)
	slices.Sort(ids)
	log := cmp.Or(l.Log, slog.Default())
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		if err := l.Reconcile(ctx, id); err != nil && ctx.Err() == nil {
			log.Error("not reconciled; trying again at the next tick", "id", id, "err", err)
			failed[id] = struct{}{}
		}
	}
	if l.AfterRound != nil {
		l.AfterRound()
	}
}
