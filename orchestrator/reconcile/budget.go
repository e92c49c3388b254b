package reconcile

// This file owns how a reconciler splits a big change into transactions:
// each stages at most MaxWritesPerUpdate task writes (fewer for large
// templates: FitTasks), counted by a Budget,
// and UpdateInChunks runs transaction after transaction until the work fits
// in one.

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// MaxWritesPerUpdate bounds the task creates, updates and deletes of one
// transaction, so one raft entry stays a few megabytes at most (a task is a
// few hundred bytes): 10,000 new replicas take two transactions in a row.
// Smaller chunks cost a raft round trip each: with 2,000, creating 10,000
// replicas on 1,000 simulated nodes took about twice as long (shoal-bench
// orchestration).
const MaxWritesPerUpdate = 5000

// MaxBytesPerUpdate bounds, roughly, the bytes of task writes in one
// transaction: tasks carry a copy of their service's template, so a large
// template means fewer tasks per transaction (see FitTasks).
const MaxBytesPerUpdate = 16 << 20

// taskOverhead is what a task weighs besides its template, generously.
const taskOverhead = 512

// Budget counts the task writes a transaction may still stage.
type Budget struct {
	left      int
	exhausted bool
}

// NewBudget returns a budget of n writes.
func NewBudget(n int) *Budget { return &Budget{left: n} }

// FitTasks lowers the budget so that writes of tasks made from spec stay
// within MaxBytesPerUpdate; it never raises it.
func (b *Budget) FitTasks(spec *api.TaskSpec) {
	b.left = min(b.left, MaxBytesPerUpdate/(proto.Size(spec)+taskOverhead))
}

// RemoveAll sets desired REMOVE on tasks, as far as the budget goes: the
// tasks of a service that is gone. The budget is fitted to their template.
func (b *Budget) RemoveAll(tx store.Tx, tasks []*api.Task) error {
	if len(tasks) > 0 {
		b.FitTasks(tasks[0].GetSpec())
	}
	return b.SetDesired(tx, api.TaskState_TASK_STATE_REMOVE, tasks...)
}

// Spend takes n writes from the budget; false when they do not fit, and
// from then on the budget is exhausted.
func (b *Budget) Spend(n int) bool {
	if b.left < n {
		b.exhausted = true
		return false
	}
	b.left -= n
	return true
}

// Exhausted reports whether a write did not fit: another transaction must
// do the rest.
func (b *Budget) Exhausted() bool { return b.exhausted }

// SetDesired moves the desired state of tasks forward to state, never back,
// staging each change in tx while the budget lasts. It changes the tasks it
// stages.
func (b *Budget) SetDesired(tx store.Tx, state api.TaskState, tasks ...*api.Task) error {
	for _, t := range tasks {
		if t.DesiredState >= state || !b.Spend(1) {
			continue
		}
		t.DesiredState = state
		if err := tx.Update(t); err != nil {
			return fmt.Errorf("set task %s desired %s: %w", t.Id, state, err)
		}
	}
	return nil
}

// UpdateInChunks runs fn in store transactions, one after another, each
// with a new Budget of MaxWritesPerUpdate, until fn leaves its budget
// unexhausted. fn stages what fits and leaves the rest to the next
// transaction, which reads the earlier ones' commits; like any Update
// callback it may run again on a version conflict, so it keeps its results
// only in what it stages and in variables it resets. committed, when set,
// is called after each commit, before the next transaction.
func UpdateInChunks(ctx context.Context, s *store.MemoryStore, fn func(store.Tx, *Budget) error, committed func()) error {
	for {
		var b *Budget
		err := s.Update(ctx, func(tx store.Tx) error {
			b = NewBudget(MaxWritesPerUpdate)
			return fn(tx, b)
		})
		if err != nil {
			return err
		}
		if committed != nil {
			committed()
		}
		if !b.Exhausted() {
			return nil
		}
	}
}
